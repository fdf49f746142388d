(module (memory (export "memory") 1)
  (func $deep (param i32) (if (local.get 0) (then (unreachable))))
  (func (export "_start") (call $deep (i32.const 1))))
