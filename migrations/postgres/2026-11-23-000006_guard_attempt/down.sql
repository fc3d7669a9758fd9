ALTER TABLE answered DROP COLUMN flag;
ALTER TABLE answered DROP COLUMN attempt;
