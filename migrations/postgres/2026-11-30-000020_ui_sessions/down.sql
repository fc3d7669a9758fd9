DROP TABLE ui_actions;
DROP TABLE ui_sessions;
