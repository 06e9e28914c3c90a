"""What the release VST3 tells a host about itself, read the way a host reads
it: the bundle's `.so` is loaded with ctypes, `GetPluginFactory()` gives the
factory, and its component's edit controller is asked for every
`ParameterInfo` (VST3 COM calls through the vtables; no host library hides
the flags).

- Every choice parameter is a list (`kIsList`), so hosts that read the flag
  show the choice names, also for two choices (Quality, Mains), which would
  otherwise look like toggles (stepCount 1).
- Units carry no leading space ("dB", not " dB"): hosts match them literally
  (Ardour recognises "dB" and "Hz"); the plugin's own display still reads
  "20.00 dB".
- Bias is continuous (stepCount 0).
- The factory's vendor is "Tubeline"; URL and e-mail are empty (there is no
  website or support address; empty is honest, a placeholder is not).
"""

import ctypes
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VST3 = Path(
    os.environ.get("TUBELINE_VST3")
    or Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "bundled" / "Tubeline.vst3"
)
SO = VST3 / "Contents" / "x86_64-linux" / "Tubeline.so"

# Interface IDs in the byte order of non-Windows VST3 (INLINE_UID).
IID_ICOMPONENT = bytes.fromhex("E831FF31F2D54301928EBBEE25697802")
IID_IEDITCONTROLLER = bytes.fromhex("DCD7BBE37742448DA874AACC979C759E")
K_CAN_AUTOMATE = 1 << 0
K_IS_LIST = 1 << 3
K_IS_BYPASS = 1 << 16

# The choice parameters (src/params.rs: every EnumParam), by display name.
CHOICES = {
    "Calibration": 4,
    "Source": 4,
    "DI Ratio": 3,
    "DI Pad": 3,
    "Mains": 2,
    "DI Source": 3,
    "Mic": 4,
    "Input Impedance": 5,
    "Preamp Type": 2,
    "Tube": 3,
    "High-pass": 4,
    "Headphone": 8,
    "Quality": 2,
}
UNITS = {
    "Input Trim": "dB",
    "Gain": "dB",
    "Level": "dB",
    "Preamp Output": "dB",
    "Amp Volume": "dB",
    "Output Trim": "dB",
    "DI Load": "ohm",
    "Amp Output Impedance": "ohm",
    "Amp Swing": "V",
    "Mix": "%",
    "Bias": "",
}


class PFactoryInfo(ctypes.Structure):
    _fields_ = [
        ("vendor", ctypes.c_char * 64),
        ("url", ctypes.c_char * 256),
        ("email", ctypes.c_char * 128),
        ("flags", ctypes.c_int32),
    ]


class PClassInfo(ctypes.Structure):
    _fields_ = [
        ("cid", ctypes.c_ubyte * 16),
        ("cardinality", ctypes.c_int32),
        ("category", ctypes.c_char * 32),
        ("name", ctypes.c_char * 64),
    ]


class ParameterInfo(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint32),
        ("title", ctypes.c_uint16 * 128),
        ("short_title", ctypes.c_uint16 * 128),
        ("units", ctypes.c_uint16 * 128),
        ("step_count", ctypes.c_int32),
        ("default", ctypes.c_double),
        ("unit_id", ctypes.c_int32),
        ("flags", ctypes.c_int32),
    ]


def method(obj, index, restype, *argtypes):
    """The `index`th vtable entry of the COM object `obj`, callable."""
    vtable = ctypes.cast(ctypes.c_void_p.from_address(obj).value, ctypes.POINTER(ctypes.c_void_p))
    fn = ctypes.CFUNCTYPE(restype, ctypes.c_void_p, *argtypes)(vtable[index])
    return lambda *args: fn(obj, *args)


def text(u16):
    return "".join(chr(c) for c in u16 if c)


@pytest.fixture(scope="module")
def vst3():
    assert SO.exists(), f"no VST3 bundle at {VST3} (cargo xtask bundle tubeline --release)"
    lib = ctypes.CDLL(str(SO))
    lib.GetPluginFactory.restype = ctypes.c_void_p
    factory = lib.GetPluginFactory()
    assert factory
    # IPluginFactory: FUnknown (0-2), getFactoryInfo 3, countClasses 4,
    # getClassInfo 5, createInstance 6.
    info = PFactoryInfo()
    assert method(factory, 3, ctypes.c_int32, ctypes.POINTER(PFactoryInfo))(ctypes.byref(info)) == 0
    cls = PClassInfo()
    assert method(factory, 5, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(PClassInfo))(
        0, ctypes.byref(cls)
    ) == 0
    component = ctypes.c_void_p()
    create = method(
        factory, 6, ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)
    )
    assert create(bytes(cls.cid), IID_ICOMPONENT, ctypes.byref(component)) == 0
    controller = ctypes.c_void_p()
    query = method(component.value, 0, ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))
    assert query(IID_IEDITCONTROLLER, ctypes.byref(controller)) == 0, "no IEditController"
    # IPluginBase::initialize (3) with no host context.
    method(component.value, 3, ctypes.c_int32, ctypes.c_void_p)(None)
    # IEditController: getParameterCount 8, getParameterInfo 9.
    count = method(controller.value, 8, ctypes.c_int32)()
    get_info = method(controller.value, 9, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ParameterInfo))
    params = {}
    for i in range(count):
        p = ParameterInfo()
        assert get_info(i, ctypes.byref(p)) == 0
        params[text(p.title)] = {"steps": p.step_count, "units": text(p.units), "flags": p.flags}
    yield {"factory": info, "class": cls, "params": params}
    # terminate (4), then release both references (2).
    method(component.value, 4, ctypes.c_int32)()
    method(controller.value, 2, ctypes.c_uint32)()
    method(component.value, 2, ctypes.c_uint32)()


def test_choices_are_lists_and_nothing_else_is(vst3):
    params = vst3["params"]
    for name, n in CHOICES.items():
        p = params[name]
        assert p["flags"] & K_IS_LIST, f"{name}: not a list ({p})"
        assert p["steps"] == n - 1, f"{name}: {p['steps']} steps for {n} choices"
    others = [name for name, p in params.items() if p["flags"] & K_IS_LIST and name not in CHOICES]
    assert not others, f"lists that are not choices: {others}"
    assert all(p["flags"] & K_CAN_AUTOMATE for p in params.values())
    assert [n for n, p in params.items() if p["flags"] & K_IS_BYPASS] == ["Bypass"]


def test_units_have_no_leading_space_and_bias_is_continuous(vst3):
    params = vst3["params"]
    for name, unit in UNITS.items():
        assert params[name]["units"] == unit, f"{name}: units {params[name]['units']!r}"
    for name, p in params.items():
        assert p["units"] == p["units"].strip(), f"{name}: units {p['units']!r}"
    assert params["Bias"]["steps"] == 0, params["Bias"]


def test_vendor_is_real_and_url_and_email_are_not_placeholders(vst3):
    info = vst3["factory"]
    assert info.vendor == b"Tubeline"
    assert info.url == b"" and info.email == b"", (info.url, info.email)
    assert vst3["class"].name == b"Tubeline"
    assert vst3["class"].category == b"Audio Module Class"
