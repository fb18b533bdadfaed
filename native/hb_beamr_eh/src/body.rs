//! Rewrites one function body: `try` blocks become nested blocks with a
//! dispatch on the exception's code, calls that may throw inside them become
//! host try calls, `throw`/`rethrow` become branches or host throws. Every
//! branch is re-targeted through the label stacks of the old and new code.

use wasm_encoder::reencode::Reencode;
use wasm_encoder::{BlockType, Function, Instruction, ValType};
use wasmparser::{FunctionBody, Operator};

use crate::error::RewriteError;
use crate::plan::{BodyCtx, HostNeed, Hosts, Payload, Shift};
use crate::scan::{Clause, FuncScan};

/// Where a value comes from: already on the stack, a local, a constant.
#[derive(Clone, Copy)]
enum Operand {
    Stack,
    Local(u32),
    Const(i32),
}

struct TryFrame {
    clauses: Vec<Clause>,
    /// New label of the block that replaces the `try` (branch target).
    dispatch_pos: u32,
    code: u32,
    payload: u32,
    /// None while in the body; Some(k) in the handler of clause k.
    handler: Option<usize>,
}

enum Kind {
    /// The function body, or a block, loop or if.
    Block,
    /// A `try` without clauses: a block.
    Plain,
    /// A `try ... delegate depth`.
    Delegate(u32),
    Try(TryFrame),
}

struct Frame {
    kind: Kind,
    /// The new label a branch to this frame targets.
    pos: u32,
}

struct Emitter<'a, 'b> {
    ctx: &'a BodyCtx<'a>,
    hosts: &'b mut Hosts,
    shift: &'b mut Shift,
    out: Function,
    frames: Vec<Frame>,
    /// Labels open in the new code (the function's own counts).
    new_len: u32,
}

/// Rewrites `body`; a body without exception handling is only re-encoded
/// (function indices shift by the host imports added).
pub fn rewrite_body(
    ctx: &BodyCtx,
    body: &FunctionBody,
    scan: &FuncScan,
    param_count: u32,
    hosts: &mut Hosts,
    shift: &mut Shift,
) -> Result<Function, RewriteError> {
    let mut locals = Vec::new();
    let mut declared: u32 = 0;
    for local in body.get_locals_reader()? {
        let (count, ty) = local?;
        declared = declared
            .checked_add(count)
            .ok_or_else(|| RewriteError::new("too many locals"))?;
        locals.push((count, shift.val_type(ty)?));
    }
    let catching = scan
        .tries
        .iter()
        .filter(|t| t.delegate.is_none() && !t.clauses.is_empty())
        .count();
    if scan.uses_eh {
        for _ in 0..catching {
            locals.push((1, ValType::I32));
            locals.push((1, ValType::I64));
        }
    }
    let mut emitter = Emitter {
        ctx,
        hosts,
        shift,
        out: Function::new(locals),
        frames: vec![Frame {
            kind: Kind::Block,
            pos: 0,
        }],
        new_len: 1,
    };
    let mut reader = body.get_operators_reader()?;
    if !scan.uses_eh {
        while !reader.eof() {
            let op = reader.read()?;
            emitter.plain(op)?;
        }
        return Ok(emitter.out);
    }
    let mut next_try = 0usize;
    let mut next_local = param_count
        .checked_add(declared)
        .ok_or_else(|| RewriteError::new("too many locals"))?;
    while !reader.eof() {
        let op = reader.read()?;
        if let Operator::Try { blockty } = op {
            let info = scan
                .tries
                .get(next_try)
                .ok_or_else(|| RewriteError::new("internal: try count mismatch"))?;
            next_try += 1;
            let kind = if let Some(depth) = info.delegate {
                Kind::Delegate(depth)
            } else if info.clauses.is_empty() {
                Kind::Plain
            } else {
                let frame = TryFrame {
                    clauses: info.clauses.clone(),
                    dispatch_pos: 0,
                    code: next_local,
                    payload: next_local + 1,
                    handler: None,
                };
                next_local += 2;
                Kind::Try(frame)
            };
            emitter.open_try(blockty, kind)?;
        } else {
            emitter.op(op)?;
        }
    }
    Ok(emitter.out)
}

impl Emitter<'_, '_> {
    fn emit(&mut self, instruction: Instruction) {
        self.out.instruction(&instruction);
    }

    /// The relative depth of new label `pos` from here.
    fn rel(&self, pos: u32) -> u32 {
        self.new_len - 1 - pos
    }

    /// The relative depth, in the new code, of old relative depth `depth`.
    fn retarget(&self, depth: u32) -> Result<u32, RewriteError> {
        let index = (self.frames.len() as u64)
            .checked_sub(1 + u64::from(depth))
            .ok_or_else(|| RewriteError::new("invalid module: branch depth"))?;
        Ok(self.rel(self.frames[index as usize].pos))
    }

    fn block(&mut self, ty: BlockType) {
        self.emit(Instruction::Block(ty));
        self.new_len += 1;
    }

    fn end(&mut self) {
        self.emit(Instruction::End);
        self.new_len -= 1;
    }

    fn host(&mut self, need: HostNeed) -> Result<u32, RewriteError> {
        self.hosts.func(need)
    }

    /// An instruction outside any rewriting: re-encoded as it is.
    fn plain(&mut self, op: Operator) -> Result<(), RewriteError> {
        let instruction = self.shift.instruction(op)?;
        self.out.instruction(&instruction);
        Ok(())
    }

    /// The frame whose handlers catch a throw at frame `from` (inclusive),
    /// following `delegate`s; None: the caller's.
    fn handler_from(&self, from: usize) -> Option<usize> {
        let mut i = from;
        loop {
            match &self.frames[i].kind {
                Kind::Try(t) if t.handler.is_none() => return Some(i),
                Kind::Delegate(depth) => {
                    // The label is counted without the try-delegate itself.
                    i = i.checked_sub(1 + *depth as usize)?;
                    continue;
                }
                _ => {}
            }
            i = i.checked_sub(1)?;
        }
    }

    fn handler_here(&self) -> Option<usize> {
        self.handler_from(self.frames.len() - 1)
    }

    fn try_frame(&self, index: usize) -> Result<&TryFrame, RewriteError> {
        match &self.frames[index].kind {
            Kind::Try(t) => Ok(t),
            _ => Err(RewriteError::new("internal: not a try frame")),
        }
    }

    fn open_try(&mut self, blockty: wasmparser::BlockType, kind: Kind) -> Result<(), RewriteError> {
        if let wasmparser::BlockType::FuncType(index) = blockty {
            let params = self.ctx.type_params.get(index as usize).copied().flatten();
            if params != Some(0) {
                return Err(RewriteError::new(
                    "a try block with parameters, which hb_beamr cannot rewrite for AOT",
                ));
            }
        }
        let ty = self.shift.block_type(blockty)?;
        let pos = self.new_len;
        self.block(ty);
        let kind = match kind {
            Kind::Try(mut t) => {
                // One block per clause (the first innermost), then the
                // dispatch block the body runs in.
                for clause in t.clauses.iter().rev() {
                    let ty = match clause {
                        Clause::Tag(tag) => self.payload(*tag)?.block_type(),
                        Clause::All => BlockType::Empty,
                    };
                    self.block(ty);
                }
                t.dispatch_pos = self.new_len;
                self.block(BlockType::Empty);
                Kind::Try(t)
            }
            other => other,
        };
        self.frames.push(Frame { kind, pos });
        Ok(())
    }

    fn payload(&self, tag: u32) -> Result<Payload, RewriteError> {
        self.ctx
            .tags
            .get(tag as usize)
            .copied()
            .ok_or_else(|| RewriteError::new("invalid module: tag index"))
    }

    fn op(&mut self, op: Operator) -> Result<(), RewriteError> {
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                let pos = self.new_len;
                self.plain(op)?;
                self.new_len += 1;
                self.frames.push(Frame {
                    kind: Kind::Block,
                    pos,
                });
            }
            Operator::Catch { .. } | Operator::CatchAll => self.next_clause()?,
            Operator::Delegate { .. } => {
                self.frames.pop();
                self.end();
            }
            Operator::End => {
                self.frames.pop();
                if self.frames.is_empty() {
                    // The function's own end.
                    self.emit(Instruction::End);
                } else {
                    self.end();
                }
            }
            Operator::Br { relative_depth } => {
                let depth = self.retarget(relative_depth)?;
                self.emit(Instruction::Br(depth));
            }
            Operator::BrIf { relative_depth } => {
                let depth = self.retarget(relative_depth)?;
                self.emit(Instruction::BrIf(depth));
            }
            Operator::BrTable { targets } => {
                let mut depths = Vec::with_capacity(targets.len() as usize);
                for target in targets.targets() {
                    depths.push(self.retarget(target?)?);
                }
                let default = self.retarget(targets.default())?;
                self.emit(Instruction::BrTable(depths.into(), default));
            }
            Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. } => {
                return Err(RewriteError::new(
                    "typed-reference branches in a function with exception handling, \
                     which hb_beamr cannot rewrite for AOT",
                ));
            }
            Operator::Throw { tag_index } => {
                match self.payload(tag_index)? {
                    Payload::Nothing => self.emit(Instruction::I64Const(0)),
                    Payload::I32 => self.emit(Instruction::I64ExtendI32U),
                    Payload::I64 => {}
                }
                let handler = self.handler_here();
                let code = Operand::Const((tag_index as i32).wrapping_add(1));
                self.raise(handler, code, Operand::Stack)?;
            }
            Operator::Rethrow { relative_depth } => {
                let index = (self.frames.len() as u64)
                    .checked_sub(1 + u64::from(relative_depth))
                    .ok_or_else(|| RewriteError::new("invalid module: rethrow depth"))?;
                let t = self.try_frame(index as usize)?;
                let (code, payload) = (t.code, t.payload);
                let handler = self.handler_here();
                self.raise(handler, Operand::Local(code), Operand::Local(payload))?;
            }
            Operator::Call { function_index } => {
                let handler = self.handler_here();
                let throws = function_index
                    .checked_sub(self.ctx.imported)
                    .and_then(|d| self.ctx.may_throw.get(d as usize).copied())
                    .unwrap_or(false);
                match handler {
                    Some(h) if throws => {
                        let host = self.host(HostNeed::CallExport(function_index))?;
                        self.emit(Instruction::Call(host));
                        self.check_caught(h)?;
                    }
                    _ => self.plain(op)?,
                }
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => match self.handler_here() {
                Some(h) => {
                    if table_index != 0 {
                        return Err(RewriteError::new(
                            "an indirect call through a table other than table 0 inside a try, \
                             which hb_beamr cannot rewrite for AOT",
                        ));
                    }
                    let host = self.host(HostNeed::CallIndirect(type_index))?;
                    self.emit(Instruction::Call(host));
                    self.check_caught(h)?;
                }
                None => self.plain(op)?,
            },
            Operator::CallRef { .. } if self.handler_here().is_some() => {
                return Err(RewriteError::new(
                    "call_ref inside a try, which hb_beamr cannot rewrite for AOT",
                ));
            }
            other => self.plain(other)?,
        }
        Ok(())
    }

    /// `catch`/`catch_all`: ends the body (then the dispatch) or the
    /// previous clause's handler.
    fn next_clause(&mut self) -> Result<(), RewriteError> {
        let top = self.frames.len() - 1;
        let end_pos = self.frames[top].pos;
        let (first, dispatch_pos, code, payload, clauses) = match &self.frames[top].kind {
            Kind::Try(t) => (
                t.handler.is_none(),
                t.dispatch_pos,
                t.code,
                t.payload,
                t.clauses.clone(),
            ),
            _ => return Err(RewriteError::new("invalid module: catch outside try")),
        };
        let br_end = self.rel(end_pos);
        self.emit(Instruction::Br(br_end));
        if first {
            self.end(); // the dispatch block: code and payload are set
            for (k, clause) in clauses.iter().enumerate() {
                // Clause k's block is k levels out from here.
                let target = dispatch_pos - 1 - k as u32;
                match clause {
                    Clause::Tag(tag) => {
                        self.emit(Instruction::LocalGet(code));
                        self.emit(Instruction::I32Const((*tag as i32).wrapping_add(1)));
                        self.emit(Instruction::I32Eq);
                        self.emit(Instruction::If(BlockType::Empty));
                        self.new_len += 1;
                        match self.payload(*tag)? {
                            Payload::Nothing => {}
                            Payload::I32 => {
                                self.emit(Instruction::LocalGet(payload));
                                self.emit(Instruction::I32WrapI64);
                            }
                            Payload::I64 => self.emit(Instruction::LocalGet(payload)),
                        }
                        self.emit(Instruction::Br(self.rel(target)));
                        self.end();
                    }
                    Clause::All => {
                        self.emit(Instruction::Br(self.rel(target)));
                        break;
                    }
                }
            }
            // No clause matched: on to the handlers around the try.
            let outer = self.handler_from(top - 1);
            self.raise(outer, Operand::Local(code), Operand::Local(payload))?;
        }
        self.end(); // the block of the clause whose handler starts now
        if let Kind::Try(t) = &mut self.frames[top].kind {
            t.handler = Some(t.handler.map_or(0, |k| k + 1));
        }
        Ok(())
    }

    /// After a host try call: branch to `handler`'s dispatch if a throw
    /// unwound it.
    fn check_caught(&mut self, handler: usize) -> Result<(), RewriteError> {
        let caught = self.host(HostNeed::Caught)?;
        let payload_fn = self.host(HostNeed::Payload)?;
        let t = self.try_frame(handler)?;
        let (code, payload, dispatch) = (t.code, t.payload, t.dispatch_pos);
        self.emit(Instruction::Call(caught));
        self.emit(Instruction::LocalTee(code));
        self.emit(Instruction::If(BlockType::Empty));
        self.new_len += 1;
        self.emit(Instruction::Call(payload_fn));
        self.emit(Instruction::LocalSet(payload));
        self.emit(Instruction::Br(self.rel(dispatch)));
        self.end();
        Ok(())
    }

    /// Throws exception `code` with `payload` (an i64) to `handler`: a
    /// branch to its dispatch, or the host throw when the caller catches.
    fn raise(
        &mut self,
        handler: Option<usize>,
        code: Operand,
        payload: Operand,
    ) -> Result<(), RewriteError> {
        let target = match handler {
            Some(h) => {
                let t = self.try_frame(h)?;
                Some((t.code, t.payload, t.dispatch_pos))
            }
            None => None,
        };
        self.push(payload);
        match target {
            Some((code_local, payload_local, dispatch)) => {
                self.emit(Instruction::LocalSet(payload_local));
                self.push(code);
                self.emit(Instruction::LocalSet(code_local));
                self.emit(Instruction::Br(self.rel(dispatch)));
            }
            None => {
                let throw = self.host(HostNeed::Throw)?;
                self.push(code);
                self.emit(Instruction::Call(throw));
                self.emit(Instruction::Unreachable);
            }
        }
        Ok(())
    }

    fn push(&mut self, operand: Operand) {
        match operand {
            Operand::Stack => {}
            Operand::Local(index) => self.emit(Instruction::LocalGet(index)),
            Operand::Const(value) => self.emit(Instruction::I32Const(value)),
        }
    }
}
