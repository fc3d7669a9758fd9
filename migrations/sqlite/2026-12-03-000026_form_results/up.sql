-- What a console form's action came to. The page a form leads to is named
-- with `?done=<nonce>`, and its notice is read from here, for this session
-- and nonce only, never from the query: no link can put its own text in the
-- signed-in console. The self-check's lines are kept as JSON, so that
-- `GET /ui/check` shows the session's last run without running anything (a
-- prefetch or a link must not run the checks). A failed action deletes its
-- row: its form can be sent again and act, rather than be taken for done.
ALTER TABLE ui_actions ADD COLUMN notice TEXT;
ALTER TABLE ui_actions ADD COLUMN check_lines TEXT;
