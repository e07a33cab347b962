(module
  (memory (export "memory") 2)
  ;; XORs len bytes at ptr (16-byte aligned) with the little-endian key word, 64 bytes per
  ;; round, then 16, then 4, then 1 (the tail keeps the key phase of ptr).
  (func (export "xor") (param $ptr i32) (param $len i32) (param $key i32)
    (local $k v128) (local $end i32)
    (local.set $k (i32x4.splat (local.get $key)))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (block $b64 (loop $l64
      (br_if $b64 (i32.gt_u (i32.add (local.get $ptr) (i32.const 64)) (local.get $end)))
      (v128.store offset=0 (local.get $ptr) (v128.xor (v128.load offset=0 (local.get $ptr)) (local.get $k)))
      (v128.store offset=16 (local.get $ptr) (v128.xor (v128.load offset=16 (local.get $ptr)) (local.get $k)))
      (v128.store offset=32 (local.get $ptr) (v128.xor (v128.load offset=32 (local.get $ptr)) (local.get $k)))
      (v128.store offset=48 (local.get $ptr) (v128.xor (v128.load offset=48 (local.get $ptr)) (local.get $k)))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 64)))
      (br $l64)))
    (block $b16 (loop $l16
      (br_if $b16 (i32.gt_u (i32.add (local.get $ptr) (i32.const 16)) (local.get $end)))
      (v128.store (local.get $ptr) (v128.xor (v128.load (local.get $ptr)) (local.get $k)))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 16)))
      (br $l16)))
    (block $b4 (loop $l4
      (br_if $b4 (i32.gt_u (i32.add (local.get $ptr) (i32.const 4)) (local.get $end)))
      (i32.store (local.get $ptr) (i32.xor (i32.load (local.get $ptr)) (local.get $key)))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
      (br $l4)))
    (block $b1 (loop $l1
      (br_if $b1 (i32.ge_u (local.get $ptr) (local.get $end)))
      (i32.store8 (local.get $ptr) (i32.xor (i32.load8_u (local.get $ptr)) (local.get $key)))
      (local.set $key (i32.shr_u (local.get $key) (i32.const 8)))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (br $l1))))
)
