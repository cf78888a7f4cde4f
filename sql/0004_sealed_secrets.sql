-- App secrets may be stored sealed (AES-256-GCM, WAFER_DATA_KEYS): a sealed
-- value of a 300-character secret is about 480 characters. The bound on
-- the secret itself (1-300 characters) is checked by wafer.
ALTER TABLE apps ALTER COLUMN secret TYPE TEXT;
