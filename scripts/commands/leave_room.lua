-- LEAVE_ROOM {"room": "lobby"}: the reverse of JOIN_ROOM. Leaving a room the
-- connection is not in is not an error.
local function valid_room(room)
  return type(room) == "string" and #room >= 1 and #room <= 32 and room:find("^[a-z0-9-]+$") ~= nil
end

return {
  command = "LEAVE_ROOM",
  route = { mode = "local" },
  limits = { max_data_bytes = 256, rate = 2, burst = 5 },
  handle = function(ctx)
    local room = ctx:field("room")
    if not valid_room(room) then
      return ctx:deny(460, "room must be 1 to 32 of a-z 0-9 -")
    end
    ctx:leave("room:" .. room)
    return ctx:reply({ room = room, joined = false })
  end,
}
