-- NOTIFY_ME: asks the example service to push NOTIFY to this user after
-- data.delayMs milliseconds. Bad input is refused here, before it costs a
-- round trip: data.delayMs is an integer from 0 to 60000 or absent, data.text
-- a string of at most 256 bytes or absent.
local MAX_DELAY_MS = 60000

return {
  command = "NOTIFY_ME",
  route = { subject = "svc.example.notify", mode = "request" },
  limits = { max_data_bytes = 1024, rate = 2, burst = 5 },
  handle = function(ctx)
    local delay, err = ctx:field("delayMs")
    if err == "data is not an object" then
      return ctx:deny(460, "data must be an object")
    end
    if delay ~= nil then
      if type(delay) ~= "number" or delay ~= math.floor(delay) or delay < 0 or delay > MAX_DELAY_MS then
        return ctx:deny(460, "delayMs must be an integer from 0 to " .. MAX_DELAY_MS)
      end
    end
    local text = ctx:field("text")
    if text ~= nil and (type(text) ~= "string" or #text > 256) then
      return ctx:deny(460, "text must be a string of at most 256 bytes")
    end
    -- Falls through: forwarded to the route with the client's data unchanged.
  end,
}
