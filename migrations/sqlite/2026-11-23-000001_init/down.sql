DROP TABLE outbox;
DROP TABLE fulfilments;
DROP TABLE answered;
DROP TABLE callbacks;
DROP TABLE orders;
