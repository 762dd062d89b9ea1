-- hubbub rooms schema, version 7: a room's owner is recorded in one place.
--
-- 0005 recorded every room's creator in `rooms.created_by` as its owner; 0006 gave private rooms
-- owner-role members (`room_members.role`), handed on to the longest-standing member when the
-- last owner leaves. In a private room the two then disagreed: the creator who left still
-- counted as owner for deletes, the member who took over did not, and rooms made before 0005
-- had an owner member but no `created_by`. From this version a private room's owners are its
-- owner-role members alone, and `created_by` names the owner of a public room only (public
-- rooms have no member list); the constraint keeps it so.
UPDATE rooms SET created_by = NULL WHERE private;
ALTER TABLE rooms ADD CONSTRAINT rooms_one_owner_record CHECK (NOT private OR created_by IS NULL);
