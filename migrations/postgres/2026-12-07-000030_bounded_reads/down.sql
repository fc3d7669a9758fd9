DROP TABLE callback_hours_sealed;
DROP TABLE callback_hours;
DROP INDEX orders_open_state;
DROP INDEX outbox_order;
DROP INDEX callbacks_api;
DROP INDEX callbacks_received;
DROP INDEX callbacks_order;
CREATE INDEX callbacks_order ON callbacks (project_id, orderid);
