//! `cargo run -p hb_beamr_eh --example rewrite IN.wasm OUT.wasm`: rewrites a
//! module's exception handling into host calls (what `compile/1` does).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        return Err("usage: rewrite IN.wasm OUT.wasm".into());
    };
    let wasm = std::fs::read(input)?;
    match hb_beamr_eh::rewrite(&wasm)? {
        hb_beamr_eh::Outcome::Unchanged => {
            std::fs::write(output, &wasm)?;
            println!("no exception handling: copied");
        }
        hb_beamr_eh::Outcome::Rewritten(bytes) => {
            std::fs::write(output, &bytes)?;
            println!("rewritten: {} -> {} bytes", wasm.len(), bytes.len());
        }
    }
    Ok(())
}
