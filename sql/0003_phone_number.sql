-- The user's phone number (POST /mina/phone), kept with the session across
-- logins, as WeChat's phoneNumber (area code included outside China).
-- Personal data: shown in full only by the per-user admin route.
ALTER TABLE sessions ADD COLUMN phone_number VARCHAR(32);
