//! The values the fuzz modules compute with: NaNs with payloads and both
//! signs, infinities, zeros of both signs (0/0, inf - inf, sqrt(-1) give
//! NaNs) and ordinary numbers.

pub const F64_BITS: &[u64] = &[
    0x7FF4_0000_0000_0001, // signalling, payload 1
    0xFFF8_0000_0000_0000, // x86's default NaN
    0x7FF8_0000_0000_0001,
    0xFFFF_FFFF_FFFF_FFFF,
    0x7FF0_0000_0000_0001,
    0x7FF8_0000_0000_0000, // canonical
    0x7FF0_0000_0000_0000, // +inf
    0xFFF0_0000_0000_0000, // -inf
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x3FF0_0000_0000_0000, // 1.0
    0xC000_0000_0000_0000, // -2.0
    0x3FE0_0000_0000_0000, // 0.5
    0x0000_0000_0000_0001, // smallest subnormal
];

pub const F32_BITS: &[u32] = &[
    0x7FA0_0001,
    0xFFC0_0000,
    0x7FC0_0001,
    0xFFFF_FFFF,
    0x7F80_0001,
    0x7FC0_0000,
    0x7F80_0000,
    0xFF80_0000,
    0x0000_0000,
    0x8000_0000,
    0x3F80_0000,
    0xC000_0000,
    0x3F00_0000,
    0x0000_0001,
];

pub const INTS: &[i64] = &[
    0,
    1,
    -1,
    7,
    0x7FFF_FFFF,
    -0x8000_0000,
    0x7FF8_0000_0000_0000,
];
