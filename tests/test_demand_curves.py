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


def test_constant_elasticity_takes_column_expressions_of_any_library():
    """A column object that is not array-like (a Spark ``Column`` in the engines) gets the
    curve as one expression, built from its own operators, not evaluated by numpy."""
    import polars as pl

    from pricelab.demand.curves import ConstantElasticity

    class Col:  # records the expression it is part of, like a Spark Column does
        def __init__(self, s: str) -> None:
            self.s = s

        def _op(self, o: object, sym: str, rev: bool = False) -> "Col":
            o_s = o.s if isinstance(o, Col) else repr(o)
            return Col(f"({o_s} {sym} {self.s})" if rev else f"({self.s} {sym} {o_s})")

        def __truediv__(self, o: object) -> "Col":
            return self._op(o, "/")

        def __mul__(self, o: object) -> "Col":
            return self._op(o, "*")

        def __rmul__(self, o: object) -> "Col":
            return self._op(o, "*", rev=True)

        def __pow__(self, o: object) -> "Col":
            return self._op(o, "**")

    curve = ConstantElasticity(base_price=Col("p"), base_quantity=Col("q"), elasticity=Col("e"))
    assert curve.quantity(Col("now")).s == "(q * ((now / p) ** e))"
    # polars expressions evaluate to the numpy curve's numbers
    df = pl.DataFrame({"p": [10.0, 20.0], "q": [5.0, 8.0], "e": [-2.0, -1.5], "now": [12.0, 18.0]})
    lazy = ConstantElasticity(pl.col("p"), pl.col("q"), pl.col("e")).quantity(pl.col("now"))
    eager = ConstantElasticity(df["p"].to_numpy(), df["q"].to_numpy(), df["e"].to_numpy())
    assert df.select(lazy).to_series().to_list() == eager.quantity(df["now"].to_numpy()).tolist()
