-- Ardour 7 (ardour7-lua): a new session at 48 kHz with one stereo track that
-- records 2.5 s of the dummy backend's pink noise. tests/host/test_ardour.py
-- runs it; arguments: session folder, session name.
local dir, name = arg[1], arg[2]
local backend = AudioEngine:set_backend("None (Dummy)", "", "")
backend:set_device_name("Pink Noise")
local s = create_session(dir, name, 48000)
assert(s, "cannot create the session")
local t = s:new_audio_track(2, 2, nil, 1, "Track", ARDOUR.PresentationInfo.max_order,
  ARDOUR.TrackMode.Normal, true):front()
t:rec_enable_control():set_value(1, PBD.GroupControlDisposition.NoGroup)
s:maybe_enable_record(false)
s:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(2500000)
s:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(1000000)
t:rec_enable_control():set_value(0, PBD.GroupControlDisposition.NoGroup)
s:disable_record(false, false)
for r in t:playlist():region_list():iter() do
  print("REGION", r:name(), r:position():samples(), r:length():samples())
end
s:save_state("", false, false, false, false, false)
close_session()
quit()
