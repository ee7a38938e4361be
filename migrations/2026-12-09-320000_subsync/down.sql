ALTER TABLE nodes DROP COLUMN instance;
DROP TABLE subscription_circuit_resets;
