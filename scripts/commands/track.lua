-- TRACK: fire and forget to the example service; the client gets code 0 as
-- soon as the event is handed to NATS (ack).
return {
  command = "TRACK",
  route = { subject = "svc.example.track", mode = "publish", ack = true },
  limits = { max_data_bytes = 2048, rate = 50, burst = 100 },
}
