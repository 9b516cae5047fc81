"""CPython's own tests of multiprocessing.sharedctypes (`_TestValue`, `_TestArray`,
`_TestSharedCTypes` in Lib/test/_test_multiprocessing.py), run against sharedctypes_rs
with `fork` processes.

Adapted, as little as possible: the objects are made on a heap (`heap.Value(...)`
rather than `Value(...)`); `copy` is `heap.copy`; a lock argument that is no lock is a
`TypeError` (CPython's falls over with an `AttributeError` when it first calls
`acquire` on it).
"""

import array
import ctypes
from ctypes import Structure, c_double, c_int, c_longlong

import pytest

import sharedctypes_rs as sc


def latin(s):
    return s.encode("latin")


class _Foo(Structure):
    _fields_ = [("x", c_int), ("y", c_double), ("z", c_longlong)]


class Base:
    @pytest.fixture(autouse=True)
    def _setup(self, heap, ctx):
        self.heap = heap
        self.Value = heap.Value
        self.RawValue = heap.RawValue
        self.Array = heap.Array
        self.RawArray = heap.RawArray
        self.Lock = heap.Lock
        self.Process = ctx.Process

    def assertEqual(self, a, b):
        assert a == b

    def assertAlmostEqual(self, a, b):
        assert round(a - b, 7) == 0

    def assertFalse(self, x):
        assert not x

    def assertRaises(self, exc, f, *args, **kwargs):
        with pytest.raises(exc):
            f(*args, **kwargs)

    def run_child(self, target, args):
        p = self.Process(target=target, args=args)
        p.daemon = True
        p.start()
        p.join()
        assert p.exitcode == 0


class TestValue(Base):
    codes_values = [
        ("i", 4343, 24234),
        ("d", 3.625, -4.25),
        ("h", -232, 234),
        ("q", 2**33, 2**34),
        ("c", latin("x"), latin("y")),
    ]

    @classmethod
    def _test(cls, values):
        for sv, cv in zip(values, cls.codes_values):
            sv.value = cv[2]

    def test_value(self, raw=False):
        if raw:
            values = [self.RawValue(code, value) for code, value, _ in self.codes_values]
        else:
            values = [self.Value(code, value) for code, value, _ in self.codes_values]

        for sv, cv in zip(values, self.codes_values):
            self.assertEqual(sv.value, cv[1])

        self.run_child(self._test, (values,))

        for sv, cv in zip(values, self.codes_values):
            self.assertEqual(sv.value, cv[2])

    def test_rawvalue(self):
        self.test_value(raw=True)

    def test_getobj_getlock(self):
        val1 = self.Value("i", 5)
        lock1 = val1.get_lock()
        obj1 = val1.get_obj()
        assert obj1.value == 5 and lock1.acquire() and lock1.release() is None

        val2 = self.Value("i", 5, lock=None)
        lock2 = val2.get_lock()
        obj2 = val2.get_obj()
        assert obj2.value == 5 and lock2 is not None

        lock = self.Lock()
        val3 = self.Value("i", 5, lock=lock)
        lock3 = val3.get_lock()
        obj3 = val3.get_obj()
        self.assertEqual(lock, lock3)
        assert obj3.value == 5

        arr4 = self.Value("i", 5, lock=False)
        self.assertFalse(hasattr(arr4, "get_lock"))
        self.assertFalse(hasattr(arr4, "get_obj"))

        self.assertRaises(TypeError, self.Value, "i", 5, lock="navalue")

        arr5 = self.RawValue("i", 5)
        self.assertFalse(hasattr(arr5, "get_lock"))
        self.assertFalse(hasattr(arr5, "get_obj"))


class TestArray(Base):
    @classmethod
    def f(cls, seq):
        for i in range(1, len(seq)):
            seq[i] += seq[i - 1]

    def test_array(self, raw=False):
        seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831]
        if raw:
            arr = self.RawArray("i", seq)
        else:
            arr = self.Array("i", seq)

        self.assertEqual(len(arr), len(seq))
        self.assertEqual(arr[3], seq[3])
        self.assertEqual(list(arr[2:7]), list(seq[2:7]))

        arr[4:8] = seq[4:8] = array.array("i", [1, 2, 3, 4])

        self.assertEqual(list(arr[:]), seq)

        self.f(seq)

        self.run_child(self.f, (arr,))

        self.assertEqual(list(arr[:]), seq)

    def test_array_from_size(self):
        size = 10
        # Test for zeroing (see issue #11675).
        # The repetition below strengthens the test by increasing the chances
        # of previously allocated non-zero memory being used for the new array
        # on the 2nd and 3rd loops.
        for _ in range(3):
            arr = self.Array("i", size)
            self.assertEqual(len(arr), size)
            self.assertEqual(list(arr), [0] * size)
            arr[:] = range(10)
            self.assertEqual(list(arr), list(range(10)))
            del arr

    def test_rawarray(self):
        self.test_array(raw=True)

    def test_getobj_getlock_obj(self):
        arr1 = self.Array("i", list(range(10)))
        lock1 = arr1.get_lock()
        obj1 = arr1.get_obj()
        assert list(obj1) == list(range(10)) and lock1 is not None

        arr2 = self.Array("i", list(range(10)), lock=None)
        lock2 = arr2.get_lock()
        obj2 = arr2.get_obj()
        assert list(obj2) == list(range(10)) and lock2 is not None

        lock = self.Lock()
        arr3 = self.Array("i", list(range(10)), lock=lock)
        lock3 = arr3.get_lock()
        obj3 = arr3.get_obj()
        self.assertEqual(lock, lock3)
        assert list(obj3) == list(range(10))

        arr4 = self.Array("i", range(10), lock=False)
        self.assertFalse(hasattr(arr4, "get_lock"))
        self.assertFalse(hasattr(arr4, "get_obj"))
        self.assertRaises(TypeError, self.Array, "i", range(10), lock="notalock")

        arr5 = self.RawArray("i", range(10))
        self.assertFalse(hasattr(arr5, "get_lock"))
        self.assertFalse(hasattr(arr5, "get_obj"))


class TestSharedCTypes(Base):
    @classmethod
    def _double(cls, x, y, z, foo, arr, string):
        x.value *= 2
        y.value *= 2
        z.value *= 2
        foo.x *= 2
        foo.y *= 2
        string.value *= 2
        for i in range(len(arr)):
            arr[i] *= 2

    def test_sharedctypes(self, lock=False):
        Value = self.Value
        x = Value("i", 7, lock=lock)
        y = Value(c_double, 1.0 / 3.0, lock=lock)
        z = Value(c_longlong, 2**33, lock=lock)
        foo = Value(_Foo, 3, 2, lock=lock)
        arr = self.Array("d", list(range(10)), lock=lock)
        string = self.Array("c", 20, lock=lock)
        string.value = latin("hello")

        self.run_child(self._double, (x, y, z, foo, arr, string))

        self.assertEqual(x.value, 14)
        self.assertAlmostEqual(y.value, 2.0 / 3.0)
        self.assertEqual(z.value, 2**34)
        self.assertEqual(foo.x, 6)
        self.assertAlmostEqual(foo.y, 4.0)
        for i in range(10):
            self.assertAlmostEqual(arr[i], i * 2)
        self.assertEqual(string.value, latin("hellohello"))

    def test_synchronize(self):
        self.test_sharedctypes(lock=True)

    def test_copy(self):
        foo = _Foo(2, 5.0, 2**33)
        bar = self.heap.copy(foo)
        foo.x = 0
        foo.y = 0
        foo.z = 0
        self.assertEqual(bar.x, 2)
        self.assertAlmostEqual(bar.y, 5.0)
        self.assertEqual(bar.z, 2**33)

    def test_copy_of_a_shared_object(self):
        foo = self.heap.RawValue(_Foo, 2, 5.0, 2**33)
        bar = self.heap.copy(foo)
        foo.x = 0
        self.assertEqual(bar.x, 2)
        self.assertEqual(bar.z, 2**33)
        arr = self.heap.Array("d", [1.0, 2.0])
        copied = self.heap.copy(arr)
        arr[0] = 9.0
        assert list(copied) == [1.0, 2.0]
        assert not hasattr(copied, "get_lock")
