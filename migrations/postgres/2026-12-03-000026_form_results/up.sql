-- What a console form's action came to (issue 20, findings 5 and 7). The
-- page a form leads to is named with `?done=<nonce>`, and its notice is read
-- from here, for this session and nonce only, never from the query. The
-- self-check's lines are kept as JSON, so that `GET /ui/check` shows the
-- session's last run without running anything. A failed action deletes its
-- row: its form can be sent again and act (finding 6).
ALTER TABLE ui_actions ADD COLUMN notice TEXT;
ALTER TABLE ui_actions ADD COLUMN check_lines TEXT;
