"""Sparse matrices in graphs (Theano's theano.sparse): CSC/CSR variables on scipy.sparse, run as host steps.

Needs scipy (`pip install 'gencomp[sparse]'`); `import gencomp` works without it.
"""

from .basic import (  # noqa: F401
    CSC,
    CSM,
    CSR,
    SparseSharedVariable,
    SparseType,
    SparseVariable,
    add,
    all_dtypes,
    as_sparse_variable,
    csc_from_dense,
    csc_matrix,
    csm_data,
    csm_indices,
    csm_indptr,
    csm_properties,
    csm_shape,
    csr_from_dense,
    csr_matrix,
    dense_from_sparse,
    dot,
    matrix,
    mul,
    shared,
    sp_ones_like,
    sp_sum,
    structured_add,
    structured_dot,
    structured_mul,
    transpose,
    true_dot,
)
