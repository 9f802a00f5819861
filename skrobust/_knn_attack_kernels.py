"""numba kernel of :mod:`skrobust._knn_attack`: the kNN vote and its margin, one pass per row."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def vote_margin(dist, labels, y_idx, k, n_classes, flipped, margin, own_ref, rival_ref):
    """Vote of the k nearest references and the order-statistic margin of each row.

    For row ``p`` of the squared distances ``dist`` (n, n_ref): ``flipped[p]`` is whether
    the majority label of the ``k`` nearest (ties to the smallest class index, as
    scikit-learn) differs from ``y_idx[p]``; with ``j = k // 2 + 1``, ``margin[p]`` is the
    (k-j+1)-th smallest distance to a reference of label ``y_idx[p]`` minus the j-th smallest
    to any other (``-inf`` when a side has too few), and ``own_ref[p]``, ``rival_ref[p]`` the
    references at those ranks (``-1`` when missing). One pass over the row, keeping the few
    smallest values of each kind by insertion.
    """
    n, n_ref = dist.shape
    j = k // 2 + 1
    n_own = k - j + 1
    top_d = np.empty(k)
    top_l = np.empty(k, dtype=np.int64)
    own_d = np.empty(n_own)
    own_i = np.empty(n_own, dtype=np.int64)
    riv_d = np.empty(j)
    riv_i = np.empty(j, dtype=np.int64)
    votes = np.empty(n_classes, dtype=np.int64)
    for p in range(n):
        m_top = 0
        m_own = 0
        m_riv = 0
        c = y_idx[p]
        for r in range(n_ref):
            v = dist[p, r]
            lab = labels[r]
            # k nearest, for the vote
            if m_top < k:
                pos = m_top
                m_top += 1
            elif v < top_d[k - 1]:
                pos = k - 1
            else:
                pos = -1
            if pos >= 0:
                while pos > 0 and top_d[pos - 1] > v:
                    top_d[pos] = top_d[pos - 1]
                    top_l[pos] = top_l[pos - 1]
                    pos -= 1
                top_d[pos] = v
                top_l[pos] = lab
            # the smallest of the point's own label, and of the others
            if lab == c:
                if m_own < n_own:
                    pos = m_own
                    m_own += 1
                elif v < own_d[n_own - 1]:
                    pos = n_own - 1
                else:
                    continue
                while pos > 0 and own_d[pos - 1] > v:
                    own_d[pos] = own_d[pos - 1]
                    own_i[pos] = own_i[pos - 1]
                    pos -= 1
                own_d[pos] = v
                own_i[pos] = r
            else:
                if m_riv < j:
                    pos = m_riv
                    m_riv += 1
                elif v < riv_d[j - 1]:
                    pos = j - 1
                else:
                    continue
                while pos > 0 and riv_d[pos - 1] > v:
                    riv_d[pos] = riv_d[pos - 1]
                    riv_i[pos] = riv_i[pos - 1]
                    pos -= 1
                riv_d[pos] = v
                riv_i[pos] = r
        votes[:] = 0
        for t in range(m_top):
            votes[top_l[t]] += 1
        pred = 0
        for q in range(n_classes):
            if votes[q] > votes[pred]:
                pred = q
        flipped[p] = pred != c
        if m_riv < j:
            margin[p] = -np.inf
            own_ref[p] = own_i[m_own - 1] if m_own == n_own else -1
            rival_ref[p] = -1
        elif m_own < n_own:
            # Too few own references: the rivals fill the k nearest whatever the move.
            margin[p] = np.inf
            own_ref[p] = -1
            rival_ref[p] = riv_i[j - 1]
        else:
            margin[p] = own_d[n_own - 1] - riv_d[j - 1]
            own_ref[p] = own_i[n_own - 1]
            rival_ref[p] = riv_i[j - 1]
