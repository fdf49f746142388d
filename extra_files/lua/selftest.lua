-- A tour of Lua 5.4 (the native interpreter in /extra_files/bin/lua): the boot tests run it on
-- Linux and on Keel and compare the two outputs line for line.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib(24)", fib(24))

local t = {}
for i = 1, 2000 do t[i] = (i * 7919) % 1009 end
table.sort(t)
print("sorted", t[1], t[1000], t[2000], #t)

print(string.format("%.6f %5.2e %d %x %q", math.pi, 1234.5678, 2^31 // 1, 255, "a\nb"))
print(("hello world from lua"):gsub("(%w+)", string.upper))
print(("key=value; other=thing"):match("(%w+)=(%w+)"))
print(7 // 2, 7 / 2, 7 % 3, -7 // 2, 3.0 == 3, math.type(3), math.type(3.0))
print(utf8.char(72, 228, 8364), utf8.len("Hä€"))

local co = coroutine.wrap(function(a)
  for i = 1, 3 do a = coroutine.yield(a * i) end
  return "done"
end)
print("coroutine", co(10), co(20), co(30), co(40))

print("pcall", pcall(function() error({code = 42}) end) == false)
print("error", select(2, pcall(function() local x = nil; return x.y end)))

local parts = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do parts[#parts + 1] = w:reverse() end
print(table.concat(parts, " "))

local path = "/tmp/lua-selftest.txt"
local f = assert(io.open(path, "w"))
for i = 1, 100 do f:write(i, "\n") end
f:close()
local sum = 0
for line in io.lines(path) do sum = sum + tonumber(line) end
print("file sum", sum)
print("remove", os.remove(path), io.open(path) == nil)

local big = {}
for i = 1, 200000 do big[i] = i * 2 end
local acc = 0
for _, v in ipairs(big) do acc = acc + v end
print("big table", acc, collectgarbage("count") > 0)
print("clock runs", os.clock() >= 0, os.time() > 1700000000)
