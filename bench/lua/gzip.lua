-- Asks for gzip, and prints wrk's summary like report.lua.
wrk.headers["Accept-Encoding"] = "gzip"
dofile("report.lua")
