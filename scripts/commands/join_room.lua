-- JOIN_ROOM {"room": "lobby"}: this connection joins the group "room:lobby";
-- services then reach it with a push on wsgw.group.room:lobby.
local function valid_room(room)
  return type(room) == "string" and #room >= 1 and #room <= 32 and room:find("^[a-z0-9-]+$") ~= nil
end

return {
  command = "JOIN_ROOM",
  route = { mode = "local" },
  limits = { max_data_bytes = 256, rate = 2, burst = 5 },
  handle = function(ctx)
    local room = ctx:field("room")
    if not valid_room(room) then
      return ctx:deny(460, "room must be 1 to 32 of a-z 0-9 -")
    end
    ctx:join("room:" .. room)
    ctx:log("debug", "joined room " .. room)
    return ctx:reply({ room = room, joined = true })
  end,
}
