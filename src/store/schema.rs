// Shared by both backends: only types both map the same way (BIGINT, TEXT,
// INTEGER, BOOLEAN). SQLite's INTEGER PRIMARY KEY reads back as BigInt.

diesel::table! {
    orders (id) {
        id -> BigInt,
        project_id -> Text,
        orderid -> Text,
        amount -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        state -> Text,
        refunded_amount -> Nullable<BigInt>,
        fulfilled_at -> Nullable<BigInt>,
        return_token -> Nullable<Text>,
        returned_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        accept_url -> Nullable<Text>,
        missed_alerted_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        test -> Bool,
        amount_paid -> Nullable<BigInt>,
        snapshot_at -> Nullable<BigInt>,
        paysera_order_id -> Nullable<Text>,
        amount_mode -> Text,
    }
}

diesel::table! {
    callbacks (id) {
        id -> BigInt,
        received_at -> BigInt,
        project_id -> Nullable<Text>,
        orderid -> Nullable<Text>,
        identity -> Nullable<Text>,
        outcome -> Text,
        reason -> Nullable<Text>,
        http_status -> Integer,
        method -> Text,
        raw_query -> Text,
        remote_addr -> Nullable<Text>,
        raw_length -> Nullable<BigInt>,
        raw_sha256 -> Nullable<Text>,
        raw_truncated -> Bool,
        api -> Text,
        raw_unsigned -> Nullable<Text>,
        duplicate_of -> Nullable<BigInt>,
        erased_at -> Nullable<BigInt>,
        facts -> Nullable<Text>,
    }
}

diesel::table! {
    answered (project_id, orderid, identity) {
        project_id -> Text,
        orderid -> Text,
        identity -> Text,
        answered_at -> BigInt,
        attempt -> Nullable<Text>,
        flag -> Nullable<Text>,
        callback_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    fulfilments (id) {
        id -> BigInt,
        project_id -> Text,
        orderid -> Text,
        callback_id -> BigInt,
        amount -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        amount_checked -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        project_id -> Text,
        orderid -> Nullable<Text>,
        callback_id -> BigInt,
        payload -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        created_at -> BigInt,
        state -> Text,
        failures -> Integer,
        requeued_at -> Nullable<BigInt>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        dead_at -> Nullable<BigInt>,
        feed_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    feed_head (id) {
        id -> Integer,
        feed_seq -> BigInt,
    }
}

diesel::table! {
    outbox_attempts (id) {
        id -> BigInt,
        event_id -> BigInt,
        attempted_at -> BigInt,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    order_flags (id) {
        id -> BigInt,
        project_id -> Text,
        orderid -> Text,
        flag -> Text,
        callback_id -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

// The missed-callback scan asks, per order, whether a callback arrived since.
diesel::allow_tables_to_appear_in_same_query!(orders, callbacks);
// A duplicate, and a retry whose reply was lost, read the row a guard names.
diesel::allow_tables_to_appear_in_same_query!(answered, callbacks);

diesel::table! {
    ui_sessions (id_hash) {
        id_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        remote_addr -> Nullable<Text>,
        token_fingerprint -> Text,
    }
}

diesel::table! {
    ui_actions (session_hash, nonce) {
        session_hash -> Text,
        nonce -> Text,
        created_at -> BigInt,
        location -> Nullable<Text>,
        notice -> Nullable<Text>,
        check_lines -> Nullable<Text>,
    }
}
