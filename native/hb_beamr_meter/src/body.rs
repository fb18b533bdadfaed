//! One function body, re-encoded with its charges (see `plan` for where),
//! and the added function that waits for fuel.
//!
//! A block's fixed charge, with `c` its fuel (the counter never goes
//! negative, so the fast path is one compare, an `if` not taken and one
//! subtraction; no `else`, whose block WAMR's interpreter pushes and pops):
//!
//! ```text
//! global.get $fuel  i64.const c  i64.lt_s
//! if  i64.const c  call $charge  end                    ;; wait for fuel
//! global.get $fuel  i64.const c  i64.sub  global.set $fuel
//! ```
//!
//! A bulk operation's run-time charge, just before it, with its size
//! operand `n` on top of the stack (kept in a scratch local):
//! `local.set $n`, the fuel for `n` (`local.get $n  i64.extend_i32_u`, or,
//! for a 64-bit operand, the unsigned minimum of `n` and `OPERAND_CLAMP`;
//! then the unit's conversion), `call $charge`, the counter less the fuel
//! for `n` (computed again), `local.get $n`. A grow keeps `n`
//! (`local.tee $n`) and is charged after it returns `r`: `local.set $r`,
//! the fuel (that for `n`, `i64.const 0`, `r != -1`, `select`),
//! `call $charge`, the counter less the fuel, `local.get $r`.

use wasm_encoder::reencode::{Error, Reencode};
use wasm_encoder::{BlockType, Function, Instruction, ValType};
use wasmparser::FunctionBody;

use crate::cost::{Bulk, SizeType, Unit, When, BYTES_PER_FUEL, FUEL_PER_PAGE, OPERAND_CLAMP};
use crate::plan;
use crate::MeterError;

/// What the bodies need to know of the module.
pub struct BodyCtx<'a> {
    pub fuel_global: u32,
    pub charge_func: u32,
    pub out_of_fuel_func: u32,
    /// Whether each memory (by index) is 64-bit.
    pub memory64: &'a [bool],
    /// Whether each table (by index) is 64-bit.
    pub table64: &'a [bool],
}

impl BodyCtx<'_> {
    fn is64(&self, size: SizeType) -> bool {
        let mem = |i: u32| self.memory64.get(i as usize).copied().unwrap_or(false);
        let table = |i: u32| self.table64.get(i as usize).copied().unwrap_or(false);
        match size {
            SizeType::Memory(m) => mem(m),
            SizeType::Memories(a, b) => mem(a) && mem(b),
            SizeType::Table(t) => table(t),
            SizeType::Tables(a, b) => table(a) && table(b),
            SizeType::I32 => false,
        }
    }
}

fn user(e: MeterError) -> Error<MeterError> {
    Error::UserError(e)
}

fn fuel_const(fuel: u64) -> i64 {
    i64::try_from(fuel).unwrap_or(i64::MAX)
}

fn fixed_charge(f: &mut Function, ctx: &BodyCtx, fuel: u64) {
    let c = fuel_const(fuel);
    let g = ctx.fuel_global;
    for i in [
        Instruction::GlobalGet(g),
        Instruction::I64Const(c),
        Instruction::I64LtS,
        Instruction::If(BlockType::Empty),
        Instruction::I64Const(c),
        Instruction::Call(ctx.charge_func),
        Instruction::End,
        Instruction::GlobalGet(g),
        Instruction::I64Const(c),
        Instruction::I64Sub,
        Instruction::GlobalSet(g),
    ] {
        f.instruction(&i);
    }
}

/// The scratch locals of one function: for i32 and i64 size operands, the
/// operand and a grow's result.
#[derive(Clone, Copy, Default)]
struct Scratch {
    size: [Option<u32>; 2],
    result: [Option<u32>; 2],
}

/// Pushes the fuel for the size in local `s`: the size as an unsigned i64
/// (at most `OPERAND_CLAMP` when 64-bit), converted by the unit.
fn size_fuel(f: &mut Function, wide: bool, s: u32, unit: Unit) {
    if wide {
        let clamp = OPERAND_CLAMP as i64;
        for i in [
            Instruction::LocalGet(s),
            Instruction::I64Const(clamp),
            Instruction::LocalGet(s),
            Instruction::I64Const(clamp),
            Instruction::I64LtU,
            Instruction::Select,
        ] {
            f.instruction(&i);
        }
    } else {
        f.instruction(&Instruction::LocalGet(s));
        f.instruction(&Instruction::I64ExtendI32U);
    }
    match unit {
        Unit::Bytes => {
            f.instruction(&Instruction::I64Const(i64::from(
                BYTES_PER_FUEL.trailing_zeros(),
            )));
            f.instruction(&Instruction::I64ShrU);
        }
        Unit::Pages => {
            f.instruction(&Instruction::I64Const(FUEL_PER_PAGE as i64));
            f.instruction(&Instruction::I64Mul);
        }
        Unit::Elements => {}
    }
}

/// What goes before a bulk operation: its size is kept (and, for
/// `When::Before`, charged). The scratch locals were planned from the same
/// steps, so the `else` branches below cannot be taken.
fn bulk_before(f: &mut Function, ctx: &BodyCtx, bulk: Bulk, scratch: &Scratch) {
    let wide = ctx.is64(bulk.size);
    let Some(s) = scratch.size[usize::from(wide)] else {
        return;
    };
    match bulk.when {
        When::Before => {
            f.instruction(&Instruction::LocalSet(s));
            size_fuel(f, wide, s, bulk.unit);
            f.instruction(&Instruction::Call(ctx.charge_func));
            take(f, ctx, |f| size_fuel(f, wide, s, bulk.unit));
            f.instruction(&Instruction::LocalGet(s));
        }
        When::AfterGrowth => {
            f.instruction(&Instruction::LocalTee(s));
        }
    }
}

/// What goes after a grow: its size is charged unless it returned -1.
fn bulk_after(f: &mut Function, ctx: &BodyCtx, bulk: Bulk, scratch: &Scratch) {
    if bulk.when != When::AfterGrowth {
        return;
    }
    let wide = ctx.is64(bulk.size);
    let (Some(s), Some(r)) = (
        scratch.size[usize::from(wide)],
        scratch.result[usize::from(wide)],
    ) else {
        return;
    };
    f.instruction(&Instruction::LocalSet(r));
    // The fuel: that for `n` when the grow succeeded, else 0.
    let fuel = |f: &mut Function| {
        size_fuel(f, wide, s, bulk.unit);
        f.instruction(&Instruction::I64Const(0));
        f.instruction(&Instruction::LocalGet(r));
        if wide {
            f.instruction(&Instruction::I64Const(-1));
            f.instruction(&Instruction::I64Ne);
        } else {
            f.instruction(&Instruction::I32Const(-1));
            f.instruction(&Instruction::I32Ne);
        }
        f.instruction(&Instruction::Select);
    };
    fuel(f);
    f.instruction(&Instruction::Call(ctx.charge_func));
    take(f, ctx, fuel);
    f.instruction(&Instruction::LocalGet(r));
}

/// Takes the fuel `push` computes from the counter (after `$charge` made
/// sure it holds that much).
fn take(f: &mut Function, ctx: &BodyCtx, push: impl Fn(&mut Function)) {
    f.instruction(&Instruction::GlobalGet(ctx.fuel_global));
    push(f);
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(ctx.fuel_global));
}

/// Re-encodes `body` (of a function with `params` parameters) with its
/// charges; function indices go through `r`.
pub fn meter_body<R: Reencode<Error = MeterError>>(
    r: &mut R,
    ctx: &BodyCtx,
    body: &FunctionBody<'_>,
    params: u32,
) -> Result<Function, Error<MeterError>> {
    let too_many = || user(MeterError::TooLarge("too many locals in a function".into()));
    let mut locals = Vec::new();
    let mut count = params;
    for pair in body.get_locals_reader()? {
        let (n, ty) = pair?;
        count = count.checked_add(n).ok_or_else(too_many)?;
        locals.push((n, r.val_type(ty)?));
    }
    let mut reader = body.get_operators_reader()?;
    let mut ops = Vec::new();
    while !reader.eof() {
        ops.push(reader.read()?);
    }
    let steps = plan::plan(&ops);
    // Which scratch locals the body needs: [i32, i64] sizes and results.
    let mut need = [[false; 2]; 2];
    for bulk in steps.iter().filter_map(|s| s.bulk) {
        let wide = usize::from(ctx.is64(bulk.size));
        need[0][wide] = true;
        need[1][wide] |= bulk.when == When::AfterGrowth;
    }
    let mut scratch = Scratch::default();
    for (kind, needed) in need.iter().enumerate() {
        for (wide, needed) in needed.iter().enumerate() {
            if !needed {
                continue;
            }
            locals.push((
                1,
                if wide == 1 {
                    ValType::I64
                } else {
                    ValType::I32
                },
            ));
            let slot = if kind == 0 {
                &mut scratch.size[wide]
            } else {
                &mut scratch.result[wide]
            };
            *slot = Some(count);
            count = count.checked_add(1).ok_or_else(too_many)?;
        }
    }
    let mut f = Function::new(locals);
    for (op, step) in ops.into_iter().zip(steps) {
        if step.charge > 0 {
            fixed_charge(&mut f, ctx, step.charge);
        }
        if let Some(bulk) = step.bulk {
            bulk_before(&mut f, ctx, bulk, &scratch);
        }
        f.instruction(&r.instruction(op)?);
        if let Some(bulk) = step.bulk {
            bulk_after(&mut f, ctx, bulk, &scratch);
        }
    }
    Ok(f)
}

/// `$charge (param $cost i64)`: until the counter holds `$cost`, calls
/// `out_of_fuel` with what is missing. It does not take `$cost`: the
/// caller does, after it returns (interface 2; 1 took it here). Not
/// metered itself.
pub fn charge_function(ctx: &BodyCtx) -> Function {
    let g = ctx.fuel_global;
    let mut f = Function::new([]);
    for i in [
        Instruction::Block(BlockType::Empty),
        Instruction::Loop(BlockType::Empty),
        Instruction::GlobalGet(g),
        Instruction::LocalGet(0),
        Instruction::I64GeS,
        Instruction::BrIf(1),
        Instruction::LocalGet(0),
        Instruction::GlobalGet(g),
        Instruction::I64Sub,
        Instruction::Call(ctx.out_of_fuel_func),
        Instruction::Br(0),
        Instruction::End,
        Instruction::End,
        Instruction::End,
    ] {
        f.instruction(&i);
    }
    f
}
