-- Ardour 7 (ardour7-lua): load the session ardour_record.lua made, insert
-- the Tubeline VST3 on the track (its defaults, Quality = Live, but Auto
-- Gain off: its slow loudness estimate remembers seconds of what played
-- before the export, which a render from a fresh start cannot), print every
-- parameter as Ardour describes it, and save. Arguments: session folder,
-- session name. One line per parameter:
-- PARAM <tab> label <tab> toggled <tab> integer_step <tab> lower <tab> upper
local dir, name = arg[1], arg[2]
AudioEngine:set_backend("None (Dummy)", "", "")
local s = load_session(dir, name)
assert(s, "cannot load the session")
local t = s:route_by_name("Track")
assert(not t:isnil(), "no track named Track")
local p = ARDOUR.LuaAPI.new_plugin(s, "Tubeline", ARDOUR.PluginType.VST3, "")
assert(not p:isnil(), "the Tubeline VST3 was not found (scanned?)")
assert(t:add_processor_by_index(p, 0, nil, true), "cannot insert the plugin")
local plug = p:to_insert():plugin(0)
for i = 0, plug:parameter_count() - 1 do
  if plug:parameter_is_input(i) and plug:parameter_is_control(i) then
    local _, _, d = ARDOUR.LuaAPI.plugin_automation(p, i)
    if d.label == "Auto Gain" then
      assert(ARDOUR.LuaAPI.set_processor_param(p, i, 0), "cannot switch Auto Gain off")
    end
    print(string.format("PARAM\t%s\t%s\t%s\t%.17g\t%.17g", d.label, tostring(d.toggled),
      tostring(d.integer_step), d.lower, d.upper))
  end
end
print("LATENCY", p:to_insert():signal_latency())
s:save_state("", false, false, false, false, false)
close_session()
quit()
