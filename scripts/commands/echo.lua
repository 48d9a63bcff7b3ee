-- ECHO: the example service answers with the request's data.
-- Pure declaration: no handle, so no Lua runs for this command at all.
return {
  command = "ECHO",
  description = "Echoes data back through svc.example.echo",
  route = { subject = "svc.example.echo", mode = "request", timeout_ms = 2000 },
  limits = { max_data_bytes = 4096, rate = 20, burst = 40 },
}
