-- SHOUT {"text": "hi"}: rewrites the data before it goes upstream. The echo
-- service gets {"text": "HI", "from": "<user id>"} and answers with it.
return {
  command = "SHOUT",
  route = { subject = "svc.example.echo", mode = "request", timeout_ms = 2000 },
  limits = { max_data_bytes = 1024, rate = 10, burst = 20 },
  handle = function(ctx)
    local text = ctx:field("text")
    if type(text) ~= "string" or #text == 0 then
      return ctx:deny(460, "text must be a non-empty string")
    end
    ctx:set_data({ text = text:upper(), from = ctx.user.id })
  end,
}
