-- POST /upload with a 1 MiB body on every request; wrk runs with its working directory here.
wrk.method = 'POST'
wrk.body = string.rep('u', 1024 * 1024)
wrk.headers['Content-Type'] = 'application/octet-stream'

dofile('report.lua')
