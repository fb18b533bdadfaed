//! The cost table, version [`COST_TABLE_VERSION`]: what each instruction
//! costs, in fuel. Changing any number here changes how much fuel a call
//! uses, so nodes that must agree must run the same version: bump the
//! version with any change (the version is recorded in every metered
//! module's `hb_beamr.meter` section).
//!
//! Version 2 has the numbers of version 1; what changed is where they are
//! charged (`plan`): a conditional branch forward (`br_if`, `br_on_*` to
//! anything but a `loop`) no longer ends a block, so the code after it is
//! charged with the code before it, whether the branch is taken or not.
//!
//! | instructions | fuel |
//! |---|---|
//! | structure: `block`, `loop`, `else`, `end`, `try`, `try_table`, `catch`, `catch_all`, `delegate`, `nop` | 0 |
//! | handler entry: the first block of a `catch` / `catch_all` handler | [`HANDLER_ENTRY`] (5) |
//! | branches: `br`, `br_if`, `if`, `br_on_*`, `return`, `unreachable` | 1 |
//! | `br_table` | 2 |
//! | loads and stores (scalar and `v128`) | 2 |
//! | integer `div` / `rem`, float `div` / `sqrt` | 4 |
//! | `call`, `return_call` | 5 |
//! | `call_indirect`, `return_call_indirect`, `call_ref`, `return_call_ref` | 10 |
//! | `throw`, `rethrow`, `throw_ref` | 10 |
//! | `memory.grow` | 10, and [`FUEL_PER_PAGE`] (1024) per page grown, when it succeeds |
//! | `memory.fill`, `memory.copy`, `memory.init` | 10 + 1 per [`BYTES_PER_FUEL`] (64) bytes, rounded down |
//! | `table.grow` | 10, and 1 per element grown, when it succeeds |
//! | `table.fill`, `table.copy`, `table.init` | 10 + 1 per element |
//! | GC arrays: `array.new`, `array.new_default`, `array.new_data`, `array.new_elem`, `array.fill`, `array.copy`, `array.init_data`, `array.init_elem` | 10 + 1 per element |
//! | `array.new_fixed` of N elements | 1 + N |
//! | everything else (constants, locals, globals, arithmetic, comparisons, conversions, `select`, `drop`, `memory.size`, `data.drop`, ...) | 1 |
//!
//! The part of a bulk operation that depends on its size operand is read
//! from the operand at run time, just before the operation; a 64-bit
//! operand counts as at most [`OPERAND_CLAMP`] units (so that the charge
//! cannot overflow; such an operation traps anyway). `memory.grow` and
//! `table.grow` are charged for their size right after they return, and
//! only when they succeed: a request that fails does no work, and programs
//! probe (emscripten's heap resize asks for less after a refusal).

use wasmparser::Operator;

/// The version of this table.
pub const COST_TABLE_VERSION: u32 = 2;

/// Entering an exception handler (`catch`, `catch_all`).
pub const HANDLER_ENTRY: u64 = 5;
/// `memory.grow`: fuel per 64 KiB page asked for.
pub const FUEL_PER_PAGE: u64 = 1024;
/// `memory.fill` / `copy` / `init`: bytes per unit of fuel.
pub const BYTES_PER_FUEL: u64 = 64;
/// The largest size operand a bulk operation is charged for.
pub const OPERAND_CLAMP: u64 = 1 << 40;

/// The fixed part of every bulk operation.
const BULK_BASE: u64 = 10;

/// What the size operand of a bulk operation is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of linear memory: 1 fuel per [`BYTES_PER_FUEL`].
    Bytes,
    /// Pages of linear memory: [`FUEL_PER_PAGE`] each.
    Pages,
    /// Table elements: 1 fuel each.
    Elements,
}

impl Unit {
    /// The charge for `units` (already clamped), as the rewritten code
    /// computes it.
    pub fn fuel(self, units: u64) -> u64 {
        match self {
            Unit::Bytes => units / BYTES_PER_FUEL,
            Unit::Pages => units * FUEL_PER_PAGE,
            Unit::Elements => units,
        }
    }
}

/// Which of a bulk operation's memories or tables decide its size
/// operand's type (64-bit only when all of them are 64-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeType {
    Memory(u32),
    Memories(u32, u32),
    Table(u32),
    Tables(u32, u32),
    /// `memory.init` and `table.init`: always i32.
    I32,
}

/// When a bulk operation's size is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Before it runs, from its size operand.
    Before,
    /// After it returns, from its size operand, unless it returned -1
    /// (`memory.grow`, `table.grow`: refused).
    AfterGrowth,
}

/// A bulk operation's charge beyond its fixed cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bulk {
    pub unit: Unit,
    pub size: SizeType,
    pub when: When,
}

/// The cost of one instruction: fuel known from the code, and what a bulk
/// operation adds at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub fixed: u64,
    pub bulk: Option<Bulk>,
}

const fn fixed(fuel: u64) -> Cost {
    Cost {
        fixed: fuel,
        bulk: None,
    }
}

const fn bulk(unit: Unit, size: SizeType) -> Cost {
    Cost {
        fixed: BULK_BASE,
        bulk: Some(Bulk {
            unit,
            size,
            when: When::Before,
        }),
    }
}

const fn growth(unit: Unit, size: SizeType) -> Cost {
    Cost {
        fixed: BULK_BASE,
        bulk: Some(Bulk {
            unit,
            size,
            when: When::AfterGrowth,
        }),
    }
}

/// The cost of `op` (see the table above).
pub fn cost(op: &Operator) -> Cost {
    use Operator::*;
    match op {
        Block { .. }
        | Loop { .. }
        | Else
        | End
        | Try { .. }
        | TryTable { .. }
        | Catch { .. }
        | CatchAll
        | Delegate { .. }
        | Nop => fixed(0),
        BrTable { .. } => fixed(2),
        Call { .. } | ReturnCall { .. } => fixed(5),
        CallIndirect { .. } | ReturnCallIndirect { .. } | CallRef { .. } | ReturnCallRef { .. } => {
            fixed(10)
        }
        Throw { .. } | Rethrow { .. } | ThrowRef => fixed(10),
        I32Load { .. }
        | I64Load { .. }
        | F32Load { .. }
        | F64Load { .. }
        | I32Load8S { .. }
        | I32Load8U { .. }
        | I32Load16S { .. }
        | I32Load16U { .. }
        | I64Load8S { .. }
        | I64Load8U { .. }
        | I64Load16S { .. }
        | I64Load16U { .. }
        | I64Load32S { .. }
        | I64Load32U { .. }
        | I32Store { .. }
        | I64Store { .. }
        | F32Store { .. }
        | F64Store { .. }
        | I32Store8 { .. }
        | I32Store16 { .. }
        | I64Store8 { .. }
        | I64Store16 { .. }
        | I64Store32 { .. }
        | V128Load { .. }
        | V128Store { .. }
        | V128Load8x8S { .. }
        | V128Load8x8U { .. }
        | V128Load16x4S { .. }
        | V128Load16x4U { .. }
        | V128Load32x2S { .. }
        | V128Load32x2U { .. }
        | V128Load8Splat { .. }
        | V128Load16Splat { .. }
        | V128Load32Splat { .. }
        | V128Load64Splat { .. }
        | V128Load32Zero { .. }
        | V128Load64Zero { .. }
        | V128Load8Lane { .. }
        | V128Load16Lane { .. }
        | V128Load32Lane { .. }
        | V128Load64Lane { .. }
        | V128Store8Lane { .. }
        | V128Store16Lane { .. }
        | V128Store32Lane { .. }
        | V128Store64Lane { .. } => fixed(2),
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU | F32Div
        | F64Div | F32Sqrt | F64Sqrt => fixed(4),
        MemoryGrow { mem } => growth(Unit::Pages, SizeType::Memory(*mem)),
        MemoryFill { mem } => bulk(Unit::Bytes, SizeType::Memory(*mem)),
        MemoryCopy { dst_mem, src_mem } => {
            bulk(Unit::Bytes, SizeType::Memories(*dst_mem, *src_mem))
        }
        MemoryInit { .. } => bulk(Unit::Bytes, SizeType::I32),
        TableGrow { table } => growth(Unit::Elements, SizeType::Table(*table)),
        TableFill { table } => bulk(Unit::Elements, SizeType::Table(*table)),
        TableCopy {
            dst_table,
            src_table,
        } => bulk(Unit::Elements, SizeType::Tables(*dst_table, *src_table)),
        TableInit { .. } => bulk(Unit::Elements, SizeType::I32),
        // GC arrays whose length or range comes from an operand (on top,
        // always i32); `array.new_fixed` lists its elements in the code.
        ArrayNew { .. }
        | ArrayNewDefault { .. }
        | ArrayNewData { .. }
        | ArrayNewElem { .. }
        | ArrayFill { .. }
        | ArrayCopy { .. }
        | ArrayInitData { .. }
        | ArrayInitElem { .. } => bulk(Unit::Elements, SizeType::I32),
        ArrayNewFixed { array_size, .. } => fixed(1 + u64::from(*array_size)),
        _ => fixed(1),
    }
}
