-- Handoff notifications, per user: a reminder this many minutes before each of
-- their on-call shifts starts (NULL: no reminder), and a notice when it starts
-- (1: yes). Each schedule's `handoff:{id}` job sends them; schedules that exist
-- already get their job when the job runner starts.
ALTER TABLE users ADD COLUMN handoff_reminder_minutes INTEGER;
ALTER TABLE users ADD COLUMN shift_start_notice INTEGER NOT NULL DEFAULT 1;
