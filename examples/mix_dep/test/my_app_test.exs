defmodule MyAppTest do
  use ExUnit.Case
  import ExUnit.CaptureLog

  test "fac(5.0) = 120.0, function names as charlists or binaries" do
    {:ok, wasm, [], [{:func, "fac", "(F)F"}]} = :hb_beamr.start(File.read!("test/test.wasm"))
    assert {:ok, [120.0]} = :hb_beamr.call(wasm, ~c"fac", [5.0])
    assert {:ok, [120.0]} = :hb_beamr.call(wasm, "fac", [5.0])
    assert :ok = :hb_beamr.stop(wasm)
  end

  test "events are logged only when log_events is on" do
    wasm = File.read!("test/test.wasm")
    start_stop = fn -> {:ok, pid, _, _} = :hb_beamr.start(wasm); :hb_beamr.stop(pid) end
    assert capture_log(start_stop) == ""

    Application.put_env(:hb_beamr, :log_events, true)
    on_exit(fn -> Application.delete_env(:hb_beamr, :log_events) end)
    assert capture_log(start_stop) =~ "wasm_init_success"
  end
end
