//! What the operator console keeps and reads: its sessions (in the database,
//! so every instance knows them), the forms already acted on, and the counts
//! of its overview.

use diesel::prelude::*;

use super::schema::{order_flags, orders, outbox, ui_actions, ui_sessions};
use super::EventState;
use super::{dispatch, now_millis, Store, StoreError};
use crate::domain::OrderState;

/// A flag as the order's story shows it: which callback raised it, and when.
#[derive(Debug, Clone, Queryable)]
pub struct FlagRow {
    pub flag: String,
    pub callback_id: Option<i64>,
    pub created_at: i64,
}

/// What a form's nonce says about a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormClaim {
    /// The first POST of this form: act.
    First,
    /// Acted on before: where that POST sent the operator (`None` while the
    /// first one is still running).
    Repeat(Option<String>),
}

/// What a form's action came to, stored with its nonce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormResult {
    /// Where the operator was sent; a repeat of the form is sent there too.
    pub location: String,
    /// What the page there says about the action.
    pub notice: Option<String>,
    /// The self-check's lines (JSON), for a form that ran it.
    pub check_lines: Option<String>,
}

/// A finished form as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct FormDone {
    /// When the form was first posted.
    pub created_at: i64,
    pub notice: Option<String>,
    pub check_lines: Option<String>,
}

/// The figures of the overview, over one period.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Callbacks received in the period, by outcome.
    pub by_outcome: Vec<(String, i64)>,
    pub awaiting_payment: i64,
    pub needs_review: i64,
    pub missing_callback: i64,
    /// Events waiting (`pending`) and given up on (`dead`), by state.
    pub events: Vec<(String, i64)>,
}

impl Store {
    /// Stores a new session (its id's hash, and the fingerprint of the token
    /// that made it) and deletes the expired ones.
    pub fn create_session(
        &self,
        id_hash: &str,
        token_fingerprint: &str,
        ttl_millis: i64,
        remote_addr: Option<&str>,
    ) -> Result<i64, StoreError> {
        let now = now_millis();
        let expires_at = now.saturating_add(ttl_millis);
        self.transaction(|conn| {
            dispatch!(conn, c => diesel::delete(
                ui_sessions::table.filter(ui_sessions::expires_at.le(now)),
            )
            .execute(c))?;
            dispatch!(conn, c => diesel::insert_into(ui_sessions::table)
                .values((
                    ui_sessions::id_hash.eq(id_hash),
                    ui_sessions::created_at.eq(now),
                    ui_sessions::expires_at.eq(expires_at),
                    ui_sessions::remote_addr.eq(remote_addr),
                    ui_sessions::token_fingerprint.eq(token_fingerprint),
                ))
                .execute(c))?;
            Ok(expires_at)
        })
    }

    /// Whether a session with this id hash exists, has not expired, and was
    /// made with the token whose fingerprint this is.
    pub fn session_alive(
        &self,
        id_hash: &str,
        token_fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        self.with_conn(|mut conn| {
            let n: i64 = dispatch!(&mut conn, c => ui_sessions::table
                .filter(ui_sessions::id_hash.eq(id_hash))
                .filter(ui_sessions::expires_at.gt(now))
                .filter(ui_sessions::token_fingerprint.eq(token_fingerprint))
                .count()
                .get_result(c))?;
            Ok(n > 0)
        })
    }

    /// Ends a session (sign-out): its row and its forms go.
    pub fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.transaction(|conn| {
            dispatch!(conn, c => diesel::delete(
                ui_actions::table.filter(ui_actions::session_hash.eq(id_hash)),
            )
            .execute(c))?;
            let n = dispatch!(conn, c => diesel::delete(
                ui_sessions::table.filter(ui_sessions::id_hash.eq(id_hash)),
            )
            .execute(c))?;
            Ok(n > 0)
        })
    }

    /// Ends every session, on every instance ("sign out everywhere"): the
    /// console, `payhook sessions revoke` and `POST /api/v1/sessions/revoke`
    /// all come here. Returns how many had not yet expired.
    pub fn revoke_sessions(&self) -> Result<usize, StoreError> {
        let now = now_millis();
        self.transaction(|conn| {
            dispatch!(conn, c => diesel::delete(ui_actions::table).execute(c))?;
            let live = dispatch!(conn, c => diesel::delete(
                ui_sessions::table.filter(ui_sessions::expires_at.gt(now)),
            )
            .execute(c))?;
            dispatch!(conn, c => diesel::delete(ui_sessions::table).execute(c))?;
            Ok(live)
        })
    }

    /// Claims a form's nonce for a session: the first claim acts, any later
    /// one (a double click, a reload, another instance) finds it taken.
    pub fn claim_form(&self, session_hash: &str, nonce: &str) -> Result<FormClaim, StoreError> {
        let now = now_millis();
        self.transaction(|conn| {
            let inserted = dispatch!(conn, c => diesel::insert_into(ui_actions::table)
                .values((
                    ui_actions::session_hash.eq(session_hash),
                    ui_actions::nonce.eq(nonce),
                    ui_actions::created_at.eq(now),
                ))
                .on_conflict((ui_actions::session_hash, ui_actions::nonce))
                .do_nothing()
                .execute(c))?;
            if inserted == 1 {
                return Ok(FormClaim::First);
            }
            let location: Option<String> = dispatch!(conn, c => ui_actions::table
                .filter(ui_actions::session_hash.eq(session_hash))
                .filter(ui_actions::nonce.eq(nonce))
                .select(ui_actions::location)
                .first(c))?;
            Ok(FormClaim::Repeat(location))
        })
    }

    /// What the first POST of a form came to.
    pub fn finish_form(
        &self,
        session_hash: &str,
        nonce: &str,
        result: &FormResult,
    ) -> Result<(), StoreError> {
        self.with_conn(|mut conn| {
            dispatch!(&mut conn, c => diesel::update(
                ui_actions::table
                    .filter(ui_actions::session_hash.eq(session_hash))
                    .filter(ui_actions::nonce.eq(nonce)),
            )
            .set((
                ui_actions::location.eq(&result.location),
                ui_actions::notice.eq(&result.notice),
                ui_actions::check_lines.eq(&result.check_lines),
            ))
            .execute(c))?;
            Ok(())
        })
    }

    /// Gives a claimed nonce back after its action failed: the same form
    /// sent again acts. A finished form keeps its row.
    pub fn release_form(&self, session_hash: &str, nonce: &str) -> Result<(), StoreError> {
        self.with_conn(|mut conn| {
            dispatch!(&mut conn, c => diesel::delete(
                ui_actions::table
                    .filter(ui_actions::session_hash.eq(session_hash))
                    .filter(ui_actions::nonce.eq(nonce))
                    .filter(ui_actions::location.is_null()),
            )
            .execute(c))?;
            Ok(())
        })
    }

    /// What a finished form of this session came to; `None` for a nonce this
    /// session never finished (another session's, a made-up one, one still
    /// running or given back).
    pub fn form_done(
        &self,
        session_hash: &str,
        nonce: &str,
    ) -> Result<Option<FormDone>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => ui_actions::table
                .filter(ui_actions::session_hash.eq(session_hash))
                .filter(ui_actions::nonce.eq(nonce))
                .filter(ui_actions::location.is_not_null())
                .select((ui_actions::created_at, ui_actions::notice, ui_actions::check_lines))
                .first(c)
                .optional())?)
        })
    }

    /// The last self-check this session ran.
    pub fn last_check(&self, session_hash: &str) -> Result<Option<FormDone>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => ui_actions::table
                .filter(ui_actions::session_hash.eq(session_hash))
                .filter(ui_actions::check_lines.is_not_null())
                .order(ui_actions::created_at.desc())
                .select((ui_actions::created_at, ui_actions::notice, ui_actions::check_lines))
                .first(c)
                .optional())?)
        })
    }

    /// The overview's figures: callbacks since `since`; orders, missed
    /// callbacks (buyer returned between `missed_since` and `missed_cutoff`)
    /// and events as they stand.
    pub fn overview(
        &self,
        since: i64,
        missed_since: i64,
        missed_cutoff: i64,
    ) -> Result<Overview, StoreError> {
        let missing_callback = self.missed_callback_count(missed_since, missed_cutoff)?;
        let by_outcome = self.callbacks_by_outcome(since)?;
        self.with_conn(|mut conn| {
            let open = |state: OrderState| state.as_str().to_string();
            let states: Vec<(String, i64)> = dispatch!(&mut conn, c => orders::table
                .filter(orders::closed_at.is_null())
                .filter(orders::state.eq_any([
                    open(OrderState::AwaitingPayment),
                    open(OrderState::NeedsReview),
                ]))
                .group_by(orders::state)
                .select((orders::state, diesel::dsl::count_star()))
                .load(c))?;
            // Delivered events are most of the outbox: not counted (`outbox_state`).
            let waiting = [EventState::Pending.as_str(), EventState::Dead.as_str()];
            let events: Vec<(String, i64)> = dispatch!(&mut conn, c => outbox::table
                .filter(outbox::state.eq_any(waiting))
                .group_by(outbox::state)
                .select((outbox::state, diesel::dsl::count_star()))
                .load(c))?;
            let of = |state: OrderState| {
                states
                    .iter()
                    .find(|(s, _)| s == state.as_str())
                    .map_or(0, |(_, n)| *n)
            };
            Ok(Overview {
                by_outcome,
                awaiting_payment: of(OrderState::AwaitingPayment),
                needs_review: of(OrderState::NeedsReview),
                missing_callback,
                events,
            })
        })
    }

    /// An order's flags with the callback that raised each, oldest first.
    pub fn order_flags(&self, project: &str, orderid: &str) -> Result<Vec<FlagRow>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => order_flags::table
                .filter(order_flags::project_id.eq(project))
                .filter(order_flags::orderid.eq(orderid))
                .order(order_flags::id.asc())
                .select((
                    order_flags::flag,
                    order_flags::callback_id,
                    order_flags::created_at,
                ))
                .load(c))?)
        })
    }

    /// Orders with a flag, newest first: the overview links them.
    pub fn flagged_orders(&self, limit: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => order_flags::table
                .order(order_flags::id.desc())
                .limit(limit)
                .select((order_flags::project_id, order_flags::orderid, order_flags::flag))
                .load(c))?)
        })
    }
}
