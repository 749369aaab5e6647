import numpy as np
from scipy.optimize import minimize, minimize_scalar

from pricelab.demand import ConstantElasticity, LinearDemand, LogitDemand, elasticity_draws


def test_constant_elasticity_optimum_matches_numeric():
    d = ConstantElasticity(np.array([100.0]), np.array([10.0]), np.array([-2.5]))
    r = minimize_scalar(
        lambda p: -d.profit(np.array([p]), 40.0)[0],
        bounds=(41, 500),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert np.isclose(d.optimal_price(40.0)[0], r.x, rtol=1e-6)
    assert np.isclose(d.optimal_price(40.0)[0], 40 * 2.5 / 1.5)
    q = d.quantity(np.array([120.0]))
    assert np.isclose(d.price_for_quantity(q)[0], 120.0)


def test_inelastic_has_no_finite_optimum():
    d = ConstantElasticity(np.array([100.0]), np.array([10.0]), np.array([-0.7]))
    assert np.isinf(d.optimal_price(np.array([40.0]))[0])


def test_logit_inverse_and_linear_quantity():
    lg = LogitDemand(np.array([2.0, 1.0]), 0.1)
    p = np.array([30.0, 25.0])
    assert np.allclose(lg.price_for_shares(lg.shares(p)), p)
    ld = LinearDemand(np.array([100.0, 50.0]), np.array([2.0, 1.0]), np.array([[0, 0.5], [0.2, 0]]))
    assert np.allclose(ld.quantity(np.array([10.0, 20.0])), [100 - 20 + 10, 50 - 20 + 2])
    r = minimize(lambda x: -ld.profit(x, np.array([5.0, 5.0])), np.array([20.0, 20.0]))
    assert ld.profit(r.x, np.array([5.0, 5.0])) > ld.profit(np.array([20.0, 20.0]), 5.0)


def test_draws_reproducible_and_truncated():
    e = np.array([-2.0, -0.1])
    a = elasticity_draws(e, np.array([0.5, 0.5]), 4000, seed=3)
    b = elasticity_draws(e, np.array([0.5, 0.5]), 4000, seed=3)
    assert np.array_equal(a, b) and a.shape == (4000, 2)
    assert a.max() <= -0.05
    assert abs(a[:, 0].mean() + 2.0) < 0.03 and abs(a[:, 0].std() - 0.5) < 0.03
