DROP TABLE mail_outbox;
ALTER TABLE users DROP COLUMN email;
