-- A steady mix for the soak: GET /, /json, /user/N, a streamed /stream and a 4 KiB POST.
local paths = {'/', '/json', '/user/1', '/stream', '/user/22'}
local body = string.rep('s', 4096)
local counter = 0

request = function()
   counter = counter + 1
   if counter % 6 == 0 then
      return wrk.format('POST', '/upload',
                        {['Content-Type'] = 'application/octet-stream'}, body)
   end
   return wrk.format('GET', paths[counter % #paths + 1])
end

dofile('report.lua')
