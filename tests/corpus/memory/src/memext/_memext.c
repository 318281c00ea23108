/* A small extension module with one allocation-failure bug of each class, and correct
 * functions around them (the memory sweep must find the four bugs and nothing else).
 *
 *   pair(a, b)          bug: crash      -- uses a tuple it never checked for NULL
 *   join_words(words)   bug: mishandled -- returns NULL without setting an exception
 *   scale(seq, factor)  bug: mishandled -- reports a failed allocation as a TypeError
 *   squares(n)          bug: leaked     -- leaks the partly built list when an item fails
 *   build_list(n)       correct
 *   checksum(data)      correct, with a fallback: recovers from a failed scratch buffer
 *   apply(fn, items)    correct, calls back into Python
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *
pair(PyObject *self, PyObject *args)
{
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO:pair", &a, &b)) {
        return NULL;
    }
    PyObject *label = PyUnicode_FromFormat("%S/%S", a, b);
    if (label == NULL) {
        return NULL;
    }
    PyObject *result = PyTuple_New(3);
    /* BUG: result is not checked; a failed allocation is a NULL dereference. */
    Py_INCREF(a);
    Py_INCREF(b);
    PyTuple_SET_ITEM(result, 0, a);
    PyTuple_SET_ITEM(result, 1, b);
    PyTuple_SET_ITEM(result, 2, label);
    return result;
}

static PyObject *
join_words(PyObject *self, PyObject *words)
{
    PyObject *seq = PySequence_Fast(words, "join_words() expects a sequence of str");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), total = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len) == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
        total += len + 1;
    }
    char *buf = PyMem_Malloc(total);
    if (buf == NULL) {
        Py_DECREF(seq);
        return NULL;  /* BUG: NULL without an exception (PyErr_NoMemory() is missing) */
    }
    char *p = buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
        if (i) {
            *p++ = ' ';
        }
        memcpy(p, s, len);
        p += len;
    }
    Py_DECREF(seq);
    PyObject *out = PyUnicode_FromStringAndSize(buf, p - buf);
    PyMem_Free(buf);
    return out;
}

static PyObject *
scale(PyObject *self, PyObject *args)
{
    PyObject *seq;
    double factor;
    if (!PyArg_ParseTuple(args, "Od:scale", &seq, &factor)) {
        return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "scale() expects a sequence of numbers");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(fast);
        /* BUG: the MemoryError is replaced by a misleading TypeError. */
        PyErr_SetString(PyExc_TypeError, "scale() expects a sequence of numbers");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (x == -1.0 && PyErr_Occurred()) {
            Py_DECREF(out);
            Py_DECREF(fast);
            return NULL;
        }
        PyObject *v = PyFloat_FromDouble(x * factor);
        if (v == NULL) {
            Py_DECREF(out);
            Py_DECREF(fast);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    Py_DECREF(fast);
    return out;
}

static PyObject *
squares(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long k = 1000 + i;
        PyObject *v = PyLong_FromLongLong(k * k);
        if (v == NULL) {
            return NULL;  /* BUG: leaks the list and the items set so far */
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyObject *
build_list(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyUnicode_FromFormat("item-%zd", i);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *
checksum(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* A scratch copy from the heap; when that fails, work in small chunks on the stack. */
    unsigned char chunk[16];
    unsigned char *scratch = PyMem_Malloc(view.len ? view.len : 1);
    unsigned long sum = 0;
    const unsigned char *src = view.buf;
    if (scratch != NULL) {
        memcpy(scratch, src, view.len);
        for (Py_ssize_t i = 0; i < view.len; i++) {
            sum = sum * 31 + scratch[i];
        }
        PyMem_Free(scratch);
    }
    else {
        for (Py_ssize_t off = 0; off < view.len; off += (Py_ssize_t)sizeof(chunk)) {
            Py_ssize_t len = view.len - off < (Py_ssize_t)sizeof(chunk) ?
                view.len - off : (Py_ssize_t)sizeof(chunk);
            memcpy(chunk, src + off, len);
            for (Py_ssize_t i = 0; i < len; i++) {
                sum = sum * 31 + chunk[i];
            }
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(sum % 251);
}

static PyObject *
apply(PyObject *self, PyObject *args)
{
    PyObject *fn, *items;
    if (!PyArg_ParseTuple(args, "OO:apply", &fn, &items)) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(items);
    if (it == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *v = PyObject_CallOneArg(fn, item);
        Py_DECREF(item);
        if (v == NULL || PyList_Append(out, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(v);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"pair", pair, METH_VARARGS, "pair(a, b) -> (a, b, 'a/b')"},
    {"join_words", join_words, METH_O, "join_words(words) -> the words joined by spaces"},
    {"scale", scale, METH_VARARGS, "scale(seq, factor) -> [x * factor for x in seq]"},
    {"squares", squares, METH_O, "squares(n) -> [(1000 + i) ** 2 for i in range(n)]"},
    {"build_list", build_list, METH_O, "build_list(n) -> ['item-0', ..., 'item-<n-1>']"},
    {"checksum", checksum, METH_O, "checksum(data) -> a small checksum of a bytes-like"},
    {"apply", apply, METH_VARARGS, "apply(fn, items) -> [fn(x) for x in items]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_memext", "Allocation-failure bugs, one of each class.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__memext(void)
{
    return PyModule_Create(&module);
}
