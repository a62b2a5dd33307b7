/* fastcall.c: the call path of a compiled function in C, for the common case (gencomp/compile/fastcall.py).
 *
 * A Caller holds what one compiled function needs to be called without Python in between: the
 * input dtypes and ranks, the shared variables it reads (not updates), where each output's lengths
 * come from, the constants, and the address of
 * the module's entry body (gc_body_0), which runs the plan on the arrays in a frame's rows. A call
 * checks its arguments (exact ndarrays of the input's dtype and rank, or Python floats, ints and
 * bools for 0-d inputs), fills the rows, allocates the outputs, runs the body without the GIL and
 * returns the outputs. Anything else (another argument type, a failed check in the plan) returns
 * NotImplemented, and gencomp's Python path then converts the arguments or raises the error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_ARRAYS 64       /* inputs, constants, outputs: larger functions take the Python path */
#define MAX_ND 32

typedef int (*body_fn)(void *frame);
typedef void *(*frame_new_fn)(void);
typedef void (*frame_free_fn)(void *frame);
typedef int64_t *(*frame_table_fn)(void *frame);

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    body_fn body;
    frame_new_fn frame_new;
    frame_free_fn frame_free;
    frame_table_fn frame_table;
    int maxnd;                          /* a frame row: data, lengths[maxnd], strides[maxnd] */
    int n_inputs, n_consts, n_outputs, single;
    int in_row[MAX_ARRAYS], in_type[MAX_ARRAYS], in_nd[MAX_ARRAYS];
    int64_t in_bcast[MAX_ARRAYS];       /* bit d: dimension d is broadcastable (length 1) */
    int n_shared;                       /* shared variables read (their value at each call) */
    PyObject *shared[MAX_ARRAYS];
    int shared_row[MAX_ARRAYS], shared_type[MAX_ARRAYS], shared_nd[MAX_ARRAYS];
    int const_row[MAX_ARRAYS];
    PyArrayObject *consts[MAX_ARRAYS];
    int out_row[MAX_ARRAYS], out_type[MAX_ARRAYS], out_nd[MAX_ARRAYS];
    int out_src[MAX_ARRAYS][MAX_ND][2]; /* length d of output k: row [0] length [1], or 1 when [0] < 0 */
    void *frame;                        /* kept between calls; NULL while a call uses it */
    PyObject *owner;                    /* keeps the module's library loaded */
} Caller;

static PyObject *str_value, *str_version;   /* "_value", "_version": a shared variable's fields */

static void set_row(int64_t *row, int maxnd, const void *data, int nd, const npy_intp *n, const npy_intp *s)
{
    row[0] = (int64_t)(intptr_t)data;
    for (int d = 0; d < nd; ++d) row[1 + d] = n[d], row[1 + maxnd + d] = s[d];
}

static PyObject *caller_call(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Caller *self = (Caller *)self_obj;
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs != self->n_inputs) Py_RETURN_NOTIMPLEMENTED;
    union { double f; int64_t i; npy_bool b; } scalars[MAX_ARRAYS];
    const void *data[MAX_ARRAYS];
    PyArrayObject *arrays[MAX_ARRAYS];
    for (int k = 0; k < self->n_inputs; ++k) {
        PyObject *v = args[k];
        arrays[k] = NULL;
        if (PyArray_CheckExact(v)) {
            PyArrayObject *a = (PyArrayObject *)v;
            if (PyArray_TYPE(a) != self->in_type[k] || PyArray_NDIM(a) != self->in_nd[k]
                    || !PyArray_ISALIGNED(a) || !PyArray_ISNOTSWAPPED(a))
                Py_RETURN_NOTIMPLEMENTED;
            for (int d = 0; d < self->in_nd[k]; ++d)
                if ((self->in_bcast[k] >> d & 1) && PyArray_DIMS(a)[d] != 1) Py_RETURN_NOTIMPLEMENTED;
            arrays[k] = a;
            data[k] = PyArray_DATA(a);
        } else if (self->in_nd[k] != 0) {
            Py_RETURN_NOTIMPLEMENTED;
        } else if (self->in_type[k] == NPY_DOUBLE && PyFloat_CheckExact(v)) {
            scalars[k].f = PyFloat_AS_DOUBLE(v);
            data[k] = &scalars[k];
        } else if (self->in_type[k] == NPY_INT64 && PyLong_CheckExact(v)) {
            int overflow = 0;
            scalars[k].i = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || (scalars[k].i == -1 && PyErr_Occurred())) {
                PyErr_Clear();
                Py_RETURN_NOTIMPLEMENTED;
            }
            data[k] = &scalars[k];
        } else if (self->in_type[k] == NPY_BOOL && PyBool_Check(v)) {
            scalars[k].b = v == Py_True;
            data[k] = &scalars[k];
        } else {
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    PyArrayObject *values[MAX_ARRAYS];   /* the shared variables' values (borrowed from them) */
    long versions[MAX_ARRAYS];
    for (int k = 0; k < self->n_shared; ++k) {
        PyObject *version = PyObject_GetAttr(self->shared[k], str_version);
        PyObject *value = version ? PyObject_GetAttr(self->shared[k], str_value) : NULL;
        versions[k] = version ? PyLong_AsLong(version) : -1;
        Py_XDECREF(version);
        if (value == NULL || versions[k] < 0 || (versions[k] & 1)) {   /* an update writing it now */
            Py_XDECREF(value);
            PyErr_Clear();
            Py_RETURN_NOTIMPLEMENTED;
        }
        Py_DECREF(value);              /* the variable keeps it alive: no call here replaces it */
        PyArrayObject *a = (PyArrayObject *)value;
        if (!PyArray_CheckExact(value) || PyArray_TYPE(a) != self->shared_type[k] || PyArray_NDIM(a) != self->shared_nd[k]
                || !PyArray_ISALIGNED(a) || !PyArray_ISNOTSWAPPED(a))
            Py_RETURN_NOTIMPLEMENTED;
        values[k] = a;
    }
    void *frame = self->frame;
    self->frame = NULL;
    if (frame == NULL && (frame = self->frame_new()) == NULL) return PyErr_NoMemory();
    int64_t *table = self->frame_table(frame);
    const int width = 1 + 2 * self->maxnd;
    for (int k = 0; k < self->n_inputs; ++k) {
        int64_t *row = table + (int64_t)self->in_row[k] * width;
        if (arrays[k] != NULL)
            set_row(row, self->maxnd, data[k], self->in_nd[k], PyArray_DIMS(arrays[k]), PyArray_STRIDES(arrays[k]));
        else
            row[0] = (int64_t)(intptr_t)data[k];
    }
    for (int k = 0; k < self->n_shared; ++k)
        set_row(table + (int64_t)self->shared_row[k] * width, self->maxnd, PyArray_DATA(values[k]),
                PyArray_NDIM(values[k]), PyArray_DIMS(values[k]), PyArray_STRIDES(values[k]));
    for (int k = 0; k < self->n_consts; ++k) {
        PyArrayObject *c = self->consts[k];
        set_row(table + (int64_t)self->const_row[k] * width, self->maxnd, PyArray_DATA(c), PyArray_NDIM(c),
                PyArray_DIMS(c), PyArray_STRIDES(c));
    }
    PyObject *outs[MAX_ARRAYS];
    int made = 0, rc = 0;
    for (; made < self->n_outputs; ++made) {
        npy_intp dims[MAX_ND];
        for (int d = 0; d < self->out_nd[made]; ++d) {
            const int *src = self->out_src[made][d];
            dims[d] = src[0] < 0 ? 1 : (npy_intp)table[(int64_t)src[0] * width + 1 + src[1]];
        }
        outs[made] = PyArray_SimpleNew(self->out_nd[made], dims, self->out_type[made]);
        if (outs[made] == NULL) break;
        table[(int64_t)self->out_row[made] * width] = (int64_t)(intptr_t)PyArray_DATA((PyArrayObject *)outs[made]);
    }
    if (made == self->n_outputs) {
        Py_BEGIN_ALLOW_THREADS
        rc = self->body(frame);
        Py_END_ALLOW_THREADS
    }
    if (self->frame == NULL) self->frame = frame;     /* give it back (or free it: another call did) */
    else self->frame_free(frame);
    for (int k = 0; k < self->n_shared && rc == 0 && made == self->n_outputs; ++k) {
        PyObject *version = PyObject_GetAttr(self->shared[k], str_version);   /* an update meanwhile? */
        const long now = version ? PyLong_AsLong(version) : -1;
        Py_XDECREF(version);
        PyErr_Clear();
        if (now != versions[k]) rc = -100;          /* then the Python path computes it again */
    }
    if (made < self->n_outputs || rc != 0) {
        for (int k = 0; k < made; ++k) Py_DECREF(outs[k]);
        if (made < self->n_outputs) return NULL;        /* out of memory: numpy set the error */
        Py_RETURN_NOTIMPLEMENTED;                        /* the Python path raises the plan's error */
    }
    if (self->single) return outs[0];
    PyObject *list = PyList_New(self->n_outputs);
    if (list == NULL) {
        for (int k = 0; k < made; ++k) Py_DECREF(outs[k]);
        return NULL;
    }
    for (int k = 0; k < self->n_outputs; ++k) PyList_SET_ITEM(list, k, outs[k]);
    return list;
}

static void caller_dealloc(PyObject *self_obj)
{
    Caller *self = (Caller *)self_obj;
    if (self->frame != NULL) self->frame_free(self->frame);
    for (int k = 0; k < self->n_consts; ++k) Py_XDECREF(self->consts[k]);
    for (int k = 0; k < self->n_shared; ++k) Py_XDECREF(self->shared[k]);
    Py_XDECREF(self->owner);
    Py_TYPE(self_obj)->tp_free(self_obj);
}

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gencomp_fastcall.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Caller, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = caller_dealloc,
    .tp_doc = "The C call path of one compiled function (see gencomp/compile/fastcall.py).",
};

static int int_list(PyObject *seq, int *out, int limit, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) return -1;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > limit) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: more than %d entries", what, limit);
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; ++k) {
        out[k] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, k));
        if (out[k] == -1 && PyErr_Occurred()) { Py_DECREF(fast); return -1; }
    }
    Py_DECREF(fast);
    return (int)n;
}

/* make_caller(addresses, maxnd, inputs, consts, outputs, single, owner): addresses = (body,
 * frame_new, frame_free, frame_table) as ints; inputs = [(row, type_num, nd, bcast bits)];
 * consts = [(row, ndarray)]; outputs = [(row, type_num, [(src row or -1, src dim)])];
 * shared = [(row, type_num, nd, shared variable)]: its `_value` read at each call (no updates). */
static PyObject *make_caller(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *addresses, *inputs, *consts, *outputs, *owner, *shared = NULL;
    int maxnd, single;
    if (!PyArg_ParseTuple(args, "OiOOOpO|O", &addresses, &maxnd, &inputs, &consts, &outputs, &single, &owner, &shared))
        return NULL;
    Caller *self = PyObject_New(Caller, &CallerType);
    if (self == NULL) return NULL;
    self->vectorcall = caller_call;
    self->frame = NULL, self->n_consts = 0, self->n_shared = 0, self->maxnd = maxnd, self->single = single;
    Py_INCREF(owner);
    self->owner = owner;
    void *fns[4];
    for (int k = 0; k < 4; ++k) {
        fns[k] = PyLong_AsVoidPtr(PySequence_GetItem(addresses, k));
        Py_DECREF(PySequence_GetItem(addresses, k));       /* GetItem gave a new reference */
    }
    self->body = (body_fn)fns[0], self->frame_new = (frame_new_fn)fns[1];
    self->frame_free = (frame_free_fn)fns[2], self->frame_table = (frame_table_fn)fns[3];
    self->n_inputs = (int)PySequence_Size(inputs);
    self->n_outputs = (int)PySequence_Size(outputs);
    const Py_ssize_t n_consts = PySequence_Size(consts);
    if (PyErr_Occurred() || maxnd > MAX_ND || self->n_inputs > MAX_ARRAYS || self->n_outputs > MAX_ARRAYS
            || n_consts > MAX_ARRAYS) {
        Py_DECREF(self);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "too many arrays for the C call path");
        return NULL;
    }
    for (int k = 0; k < self->n_inputs; ++k) {
        int v[4];
        PyObject *item = PySequence_GetItem(inputs, k);
        const int n = item ? int_list(item, v, 4, "input") : -1;
        Py_XDECREF(item);
        if (n != 4) { Py_DECREF(self); if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "input"); return NULL; }
        self->in_row[k] = v[0], self->in_type[k] = v[1], self->in_nd[k] = v[2], self->in_bcast[k] = v[3];
    }
    for (Py_ssize_t k = 0; k < n_consts; ++k) {
        PyObject *item = PySequence_GetItem(consts, k);
        PyObject *row = item ? PySequence_GetItem(item, 0) : NULL, *value = item ? PySequence_GetItem(item, 1) : NULL;
        Py_XDECREF(item);
        if (row == NULL || value == NULL || !PyArray_Check(value)) {
            Py_XDECREF(row), Py_XDECREF(value), Py_DECREF(self);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "constants are (row, ndarray) pairs");
            return NULL;
        }
        self->const_row[k] = (int)PyLong_AsLong(row);
        self->consts[k] = (PyArrayObject *)value;          /* the reference GetItem gave */
        self->n_consts = (int)k + 1;
        Py_DECREF(row);
    }
    const Py_ssize_t n_shared = shared ? PySequence_Size(shared) : 0;
    if (n_shared < 0 || n_shared > MAX_ARRAYS) {
        Py_DECREF(self);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "too many shared variables");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n_shared; ++k) {         /* (row, type_num, nd, the variable) */
        PyObject *item = PySequence_GetItem(shared, k);
        PyObject *var = item ? PySequence_GetItem(item, 3) : NULL;
        int v[3];
        PyObject *head = item ? PySequence_GetSlice(item, 0, 3) : NULL;
        const int n = head ? int_list(head, v, 3, "shared") : -1;
        Py_XDECREF(head), Py_XDECREF(item);
        if (var == NULL || n != 3) {
            Py_XDECREF(var), Py_DECREF(self);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "shared");
            return NULL;
        }
        self->shared_row[k] = v[0], self->shared_type[k] = v[1], self->shared_nd[k] = v[2];
        self->shared[k] = var;                            /* the reference GetItem gave */
        self->n_shared = (int)k + 1;
    }
    for (int k = 0; k < self->n_outputs; ++k) {
        PyObject *item = PySequence_GetItem(outputs, k);
        PyObject *dims = item ? PySequence_GetItem(item, 2) : NULL;
        PyObject *row = item ? PySequence_GetItem(item, 0) : NULL, *type = item ? PySequence_GetItem(item, 1) : NULL;
        Py_XDECREF(item);
        const Py_ssize_t nd = dims ? PySequence_Size(dims) : -1;
        if (row == NULL || type == NULL || nd < 0 || nd > MAX_ND) {
            Py_XDECREF(dims), Py_XDECREF(row), Py_XDECREF(type), Py_DECREF(self);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "output");
            return NULL;
        }
        self->out_row[k] = (int)PyLong_AsLong(row), self->out_type[k] = (int)PyLong_AsLong(type);
        self->out_nd[k] = (int)nd;
        Py_DECREF(row), Py_DECREF(type);
        for (Py_ssize_t d = 0; d < nd; ++d) {
            PyObject *src = PySequence_GetItem(dims, d);
            const int n = src ? int_list(src, self->out_src[k][d], 2, "output length") : -1;
            Py_XDECREF(src);
            if (n != 2) { Py_DECREF(dims); Py_DECREF(self); if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "output length"); return NULL; }
        }
        Py_DECREF(dims);
    }
    return (PyObject *)self;
}

static PyMethodDef methods[] = {
    {"make_caller", make_caller, METH_VARARGS, "A C call path for one compiled function."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "gencomp_fastcall", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit_gencomp_fastcall(void)
{
    import_array();
    if (PyType_Ready(&CallerType) < 0) return NULL;
    str_value = PyUnicode_InternFromString("_value");
    str_version = PyUnicode_InternFromString("_version");
    if (str_value == NULL || str_version == NULL) return NULL;
    return PyModule_Create(&module_def);
}
