-- WHOAMI: answered by the gateway itself (mode "local"): who the connection
-- is, with the same names as WELCOME.
return {
  command = "WHOAMI",
  route = { mode = "local" },
  limits = { rate = 5, burst = 10 },
  handle = function(ctx)
    return ctx:reply({
      userId = ctx.user.id,
      name = ctx.user.name,
      connId = ctx.conn,
      gateway = ctx.gateway,
    })
  end,
}
