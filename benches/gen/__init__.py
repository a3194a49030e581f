"""The parts of generate.py: packet builders, payloads, application models, transports and
the shapes (sessions, interleaved, syn-flood, dns-mix)."""
