from scanme import kv, save_atomic
from scanme.kv import Cache
from scanme.kv import put as kv_put


def main(store):
    kv_put(store, "a", 1)
    kv.get(store, "a")
    cache = Cache()
    cache.fill("k")
    save_atomic("/tmp/x", "data")
    try:
        print("no point here")
    except ValueError:
        pass
