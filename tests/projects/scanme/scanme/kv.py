import failpath as fp
from failpath import fallible
from failpath import point as checkpoint


@fp.fallible("kv.put", cls="kv:put")
def put(store, key, value):
    checkpoint("kv.validate")
    store[key] = value


@fallible
def get(store, key):
    return store[key]


class Cache:
    @fallible(cls="cache:fill")
    def fill(self, key):
        fp.point(name="cache.fill", cls="cache:fill")
        return key

    def warm(self, keys):
        for k in keys:
            self.fill(k)
