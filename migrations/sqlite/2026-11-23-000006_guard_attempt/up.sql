-- Which request took the duplicate guard, and the alert it raised: a retry of
-- that request whose COMMIT landed though the reply was lost recognises its own
-- attempt and reports what it stored instead of `duplicate`.
ALTER TABLE answered ADD COLUMN attempt TEXT;
ALTER TABLE answered ADD COLUMN flag TEXT;
