-- Gateway notifications nothing verified ("captured", a gateway without a
-- recipe) past PAYHOOK_CAPTURED_RETENTION, for the pruner: anyone can send
-- them, so they are bounded in time as rejected requests are.
CREATE INDEX callbacks_captured_received ON callbacks (received_at)
    WHERE outcome = 'captured';
