;; 3 million failing memory.grow: found by the fuzzer; without guaranteed tail calls in the
;; interpreter every one of them took native stack, and the kernel task overflowed.
(module (memory (export "memory") 1 1)
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const 3000000))
    (loop $l
      (drop (memory.grow (i32.const 1)))
      (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))))
