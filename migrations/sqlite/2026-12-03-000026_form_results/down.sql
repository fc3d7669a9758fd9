ALTER TABLE ui_actions DROP COLUMN check_lines;
ALTER TABLE ui_actions DROP COLUMN notice;
