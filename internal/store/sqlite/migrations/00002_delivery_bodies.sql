-- +goose Up
-- Each delivery's body, written once. A claim and an outcome each rewrite the delivery's row: with
-- the body in it, every byte of the body was written twice more per delivery.
CREATE TABLE delivery_bodies (
    delivery_seq INTEGER PRIMARY KEY REFERENCES deliveries (seq) ON DELETE CASCADE,
    body         BLOB NOT NULL
);
INSERT INTO delivery_bodies (delivery_seq, body) SELECT seq, body FROM deliveries;
ALTER TABLE deliveries DROP COLUMN body;

-- +goose Down
ALTER TABLE deliveries ADD COLUMN body BLOB NOT NULL DEFAULT x'';
UPDATE deliveries SET body = (SELECT body FROM delivery_bodies WHERE delivery_seq = deliveries.seq);
DROP TABLE delivery_bodies;
