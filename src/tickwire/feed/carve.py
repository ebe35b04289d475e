"""``carve(flat, start, shape)``: a C-contiguous N-d view of ``flat[start:]``, in Numba.

Why: the handler keeps its whole state in one flat int64 array (plus one uint8 array)
so a call passes two arrays instead of a dozen (each array is passed by value, ~7-13
words). Numba's ``a[x:y].reshape(...)`` would rebuild the views, but it calls a C
helper per reshape (tens of ns), which cost more than decoding a message. This
intrinsic emits only pointer arithmetic: data = flat.data + start, C strides from
``shape``, same meminfo (one reference taken on it). No bounds check: ``Feed`` sized the regions (feed.state).
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array


@intrinsic
def carve(typingctx, flat, start, shape):
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and isinstance(start, types.Integer)):
        return None
    if isinstance(shape, types.Integer):
        ndim = 1
    elif isinstance(shape, types.UniTuple) and isinstance(shape.dtype, types.Integer):
        ndim = shape.count
    else:
        return None
    retty = types.Array(flat.dtype, ndim, "C")

    def codegen(context, builder, sig, args):
        arrval, startval, shapeval = args
        src = context.make_array(flat)(context, builder, arrval)
        dst = context.make_array(retty)(context, builder)
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(flat.dtype))
        if ndim == 1:
            dims = [builder.sext(shapeval, intp) if shapeval.type.width < 64 else shapeval]
        else:
            dims = [d if d.type.width == 64 else builder.sext(d, intp)
                    for d in cgutils.unpack_tuple(builder, shapeval, ndim)]
        strides = [None] * ndim
        acc = intp(itemsize)
        for k in range(ndim - 1, -1, -1):
            strides[k] = acc
            acc = builder.mul(acc, dims[k])
        start64 = startval if startval.type.width == 64 else builder.sext(startval, intp)
        data = builder.gep(src.data, [start64])
        populate_array(dst, data=data, shape=dims, strides=strides, itemsize=intp(itemsize),
                       meminfo=src.meminfo, parent=src.parent)
        # An intrinsic's result is a new reference: the view shares the flat array's
        # meminfo, so take a reference on it, or the caller's decref frees memory in use.
        if context.enable_nrt:
            context.nrt.incref(builder, flat, arrval)
        return dst._getvalue()

    return retty(flat, start, shape), codegen
