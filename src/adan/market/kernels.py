"""The simulator's per-step arithmetic compiled with numba: one pass over the batch per stage
instead of a dozen NumPy passes, each a Python call.

Every kernel does exactly the floating-point operations of the NumPy expressions it replaced,
in the same order (sums over assets column by column, as `adan.market.batch.row_sum`; a
boolean mask multiplies as 1.0 or 0.0, keeping the sign of zero), so the simulator's outputs
are bit-identical to the NumPy simulator's (tests/market/test_simulator_golden.py). Logs stay
in NumPy: its float64 log is not libm's on every CPU. Compiled on first use and cached on
disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _equity_at_open(i, units, open1, cash, floor):  # noqa: ANN001, ANN202
    """Env ``i``'s equity at the open: cash + the book at ``open1``, never below ``floor``."""
    value = units[i, 0] * open1[i, 0]
    for j in range(1, units.shape[1]):
        value += units[i, j] * open1[i, j]
    return _maximum(cash[i] + value, floor)


@njit(cache=True)
def fill_at_open(
    weights: np.ndarray,
    units: np.ndarray,
    avg_price: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
    open1: np.ndarray,
    floor: float,
    band: float,
    clipped: np.ndarray,
    rates: tuple,
    new_units: np.ndarray,
    filled: np.ndarray,
    costs: tuple,
    equity_open: np.ndarray,
) -> None:
    """Market orders to ``weights`` [N, A] filled in full at bar t+1's open ``open1``, with
    their costs, booked into the portfolio (``avg_price``, ``cash``, ``realised`` in place;
    the new positions into ``new_units``). The no-trade ``band`` keeps a held weight within
    it (a ``clipped`` env always trades). ``rates`` and ``costs``: see `fill_costs`."""
    n, a = weights.shape
    for i in range(n):
        eq = _equity_at_open(i, units, open1, cash, floor)
        equity_open[i] = eq
        for j in range(a):
            price = open1[i, j]
            old = units[i, j]
            order = weights[i, j] * (eq / price) - old
            if band > 0:
                held = old * price / eq
                w = weights[i, j]
                trade = abs(w - held) > band or (w == 0 and held != 0) or clipped[i]
                order = order * (1.0 if trade else 0.0)
            filled[i, j] = order
            new_units[i, j] = old + order
        _costs_row(i, filled, open1, rates, costs)
        _rebalance_row(i, units, new_units, open1, avg_price, cash, realised, costs[4][i])


@njit(cache=True)
def fill_costs(units: np.ndarray, price: np.ndarray, rates: tuple, costs: tuple) -> None:
    """What fills of ``units`` at ``price`` [N, A] cost (see `ExecutionModel.costs`).

    ``rates``: (fee, half spread, slippage) as fractions of notional, then per-bar rows [N, A]
    of the estimated half spread and of the impact per sqrt(unit) (empty: the fixed half
    spread, no impact). ``costs`` (out): fee, spread, slippage, impact [N, A], then total
    and notional [N]."""
    for i in range(units.shape[0]):
        _costs_row(i, units, price, rates, costs)


@njit(cache=True)
def _costs_row(i, units, price, rates, costs):  # noqa: ANN001, ANN202
    fee_rate, half_spread, slippage_rate, spread_rows, impact_rows = rates
    fee, spread, slippage, impact, total, notional_sum = costs
    estimated = spread_rows.shape[0] > 0
    has_impact = impact_rows.shape[0] > 0
    per_env = rows_total = impact_total = 0.0
    for j in range(units.shape[1]):
        size = abs(units[i, j])
        notional = size * price[i, j]
        per_env = notional if j == 0 else per_env + notional
        fee[i, j] = notional * fee_rate
        slippage[i, j] = notional * slippage_rate
        if estimated:
            spread[i, j] = notional * spread_rows[i, j]
            cell = fee[i, j] + spread[i, j]
            cell += slippage[i, j]
            rows_total = cell if j == 0 else rows_total + cell
        else:
            spread[i, j] = notional * half_spread
        if has_impact:
            rate = impact_rows[i, j] * np.sqrt(size)
            impact[i, j] = notional * min(rate, 1.0)
            impact_total = impact[i, j] if j == 0 else impact_total + impact[i, j]
        else:
            impact[i, j] = 0.0
    notional_sum[i] = per_env
    # one rate for every fill: the total needs no per-asset pass
    cost = rows_total if estimated else per_env * (fee_rate + half_spread + slippage_rate)
    if has_impact:
        cost += impact_total
    total[i] = cost


@njit(cache=True)
def rebalance(
    units: np.ndarray,
    target: np.ndarray,
    prices: np.ndarray,
    avg_price: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
    costs: np.ndarray,
) -> None:
    """`Portfolio.rebalance` of every env (see there): ``avg_price``, ``cash`` and
    ``realised`` in place; ``units`` is read, the caller installs ``target``."""
    for i in range(units.shape[0]):
        _rebalance_row(i, units, target, prices, avg_price, cash, realised, costs[i])


@njit(cache=True)
def _rebalance_row(i, units, target_units, prices, avg_price, cash, realised, cost):  # noqa: ANN001, ANN202
    a = units.shape[1]
    pnl = 0.0
    spent = 0.0
    for j in range(a):
        old = units[i, j]
        target = target_units[i, j]
        delta = target - old
        price = prices[i, j]
        closed = np.copysign(min(abs(delta), abs(old)), old) * (1.0 if old * delta < 0 else 0.0)
        gain = closed * (price - avg_price[i, j])
        pnl = gain if j == 0 else pnl + gain
        avg = avg_price[i, j]
        if old * delta > 0:
            avg = (old * avg + delta * price) / target
        if old * target <= 0 and target != 0:
            avg = price
        avg_price[i, j] = avg * (1.0 if target != 0 else 0.0)
        spent = delta * price if j == 0 else spent + delta * price
    cash[i] -= spent
    cash[i] -= cost
    realised[i] += pnl
    realised[i] -= cost


@njit(cache=True)
def close_bar(
    units: np.ndarray,
    mark: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
    peak: np.ndarray,
    borrow_per_bar: float,
    ruin_level: float,
    prev_equity: np.ndarray,
    equity_open: np.ndarray,
    clipped: np.ndarray,
    fills: tuple,
    exits: tuple,
    has_exits: bool,
    stats_float: tuple,
    stats_int: tuple,
    pf_turnover: np.ndarray,
    out_float: np.ndarray,
    held: np.ndarray,
    stop_count: np.ndarray,
) -> None:
    """Bar t+1's close for every env after its fills (and stop exits): shorts pay the bar's
    borrow, the book is marked at ``mark``, the step's costs and turnover are totalled, and
    the episode statistics (`EpisodeStats`) take the step.

    ``fills``/``exits``: (units, fee, spread, slippage, impact [N, A], total, notional [N]);
    ``stats_float``: (ret_sum, ret_sq_sum, max_drawdown, turnover, costs);
    ``stats_int``: (length, hold_bars, win_bars, trades, stop_exits, risk_clips).
    ``out_float`` [N, 14], per env (one contiguous record: a dozen separate output arrays
    measured 3x slower at N=4096): borrow, equity, drawdown, fee, spread, slippage, impact,
    cost, turnover, exposure, safe equity / previous equity, (safe equity + cost) / previous
    equity, net return, cost / previous equity."""
    n, a = units.shape
    f_units, f_fee, f_spread, f_slip, f_impact, f_total, f_notional = fills
    x_units, x_fee, x_spread, x_slip, x_impact, x_total, x_notional = exits
    ret_sum, ret_sq_sum, max_dd, turnover_sum, costs_sum = stats_float
    length, hold_bars, win_bars, trades, stop_sum, risk_clips = stats_int
    for i in range(n):
        borrow = 0.0
        if borrow_per_bar > 0:  # shorts held through the bar pay its borrow at the close
            short = min(units[i, 0], 0.0) * mark[i, 0]
            for j in range(1, a):
                short += min(units[i, j], 0.0) * mark[i, j]
            borrow = short * -borrow_per_bar
            cash[i] -= borrow
            realised[i] -= borrow
        value = units[i, 0] * mark[i, 0]
        gross = abs(units[i, 0]) * mark[i, 0]
        for j in range(1, a):
            value += units[i, j] * mark[i, j]
            gross += abs(units[i, j]) * mark[i, j]
        equity = cash[i] + value
        peak[i] = max(peak[i], equity)
        drawdown = 1.0 - equity / peak[i]
        fee = spread = slip = impact = 0.0
        fills_n = 0
        exits_n = 0
        for j in range(a):
            cf, cs, cl, ci = f_fee[i, j], f_spread[i, j], f_slip[i, j], f_impact[i, j]
            if has_exits:
                cf, cs = cf + x_fee[i, j], cs + x_spread[i, j]
                cl, ci = cl + x_slip[i, j], ci + x_impact[i, j]
                exits_n += x_units[i, j] != 0
            fee = cf if j == 0 else fee + cf
            spread = cs if j == 0 else spread + cs
            slip = cl if j == 0 else slip + cl
            impact = ci if j == 0 else impact + ci
            fills_n += f_units[i, j] != 0
        cost = f_total[i] + borrow
        traded = f_notional[i]
        if has_exits:
            cost = cost + x_total[i]
            traded = traded + x_notional[i]
        safe = max(equity, ruin_level)
        turnover = traded / equity_open[i]
        exposure = gross / safe
        net_return = equity / prev_equity[i] - 1.0
        holding = exposure > 0 or exits_n > 0
        row = out_float[i]
        row[0], row[1], row[2], row[3], row[4] = borrow, equity, drawdown, fee, spread
        row[5], row[6], row[7], row[8], row[9] = slip, impact, cost, turnover, exposure
        row[10] = safe / prev_equity[i]
        row[11] = (safe + cost) / prev_equity[i]
        row[12], row[13] = net_return, cost / prev_equity[i]
        held[i] = holding
        stop_count[i] = exits_n
        pf_turnover[i] += turnover
        length[i] += 1
        ret_sum[i] += net_return
        ret_sq_sum[i] += net_return * net_return
        max_dd[i] = max(max_dd[i], drawdown)
        turnover_sum[i] += turnover
        costs_sum[i] += cost
        hold_bars[i] += holding
        win_bars[i] += holding and net_return > 0
        trades[i] += fills_n + exits_n
        stop_sum[i] += exits_n
        risk_clips[i] += clipped[i]


@njit(cache=True)
def gather_windows(rows: np.ndarray, first: np.ndarray, window: int, out: np.ndarray) -> None:
    """``out[i]`` = rows ``first[i]`` .. ``first[i] + window - 1`` of ``rows`` [P, K] (a
    window of bars is one contiguous block, so each env is one straight copy)."""
    k = rows.shape[1]
    flat = rows.reshape(-1)
    size = window * k
    for i in range(first.shape[0]):
        start = first[i] * k
        dest = out[i]
        for m in range(size):
            dest[m] = flat[start + m]


# ------------------------------------------------------------------------- behaviour engine
@njit(cache=True)
def _minimum(a: float, b: float) -> float:
    """``np.minimum`` of two floats (a NaN wins)."""
    return a if (a < b or a != a) else b


@njit(cache=True)
def _maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats (a NaN wins)."""
    return a if (a > b or a != a) else b


@njit(cache=True)
def behaviour_update(
    regime: np.ndarray,
    drawdown: np.ndarray,
    net_return: np.ndarray,
    holding: np.ndarray,
    state: tuple,
    bias: np.ndarray,
    consts: tuple,
    out: tuple,
) -> int:
    """One bar of `DynamicBehaviourEngine.update` for every env (see there).

    Returns 0 when done, else what is wrong, with nothing changed: 1 a regime code out of
    range, 2 a non-finite drawdown or net return, 3 a non-finite output. ``state``: the
    engine's regime, win_rate, ret_sq [N], params [4, N] and transitions [R, R] (read; the
    transitions count this bar's switches in place once every check passed). ``out``: the new
    win_rate, ret_sq [N], params and last change [4, N]. ``bias`` [N]: ``decay ** count``
    (NumPy's power: its float64 power is not libm's on every CPU). ``consts``: perf_rate,
    decay [N]; max |return|; bars per year; base [N] (env * R); size table [N * R]; win_ref,
    win_off, vol_ref, vol_off, drawdown_ref, drawdown_off [N] (the ``*_off`` masks pin a
    modifier to neutral); low, high, smoothing [4, N]; fresh [4, N * R]; disabled [N]."""
    (rate_, decay_, max_abs, bars_per_year, base, size_table, win_ref, win_off, vol_ref,
     vol_off, dd_ref, dd_off, low, high, smoothing, fresh, disabled) = consts  # fmt: skip
    last_regime, win_rate, ret_sq, params, transitions = state
    out_win_rate, out_ret_sq, out_params, out_change = out
    n = regime.shape[0]
    num_regimes = transitions.shape[0]
    for i in range(n):
        if regime[i] < 0 or regime[i] >= num_regimes:
            return 1
        if not (np.isfinite(drawdown[i]) and np.isfinite(net_return[i])):
            return 2
    finite = True
    for i in range(n):
        rate = rate_[i]
        # win rate moves by rate * (win - win_rate) on holding bars
        step = ((1.0 if net_return[i] > 0 else 0.0) - win_rate[i]) * rate
        step = step * (1.0 if holding[i] else 0.0)
        wr = win_rate[i] + step
        r = _minimum(abs(net_return[i]), max_abs)
        r = r * r
        r = r * rate
        r = r + decay_[i] * ret_sq[i]
        out_win_rate[i] = wr
        out_ret_sq[i] = r
        vol = r / (1.0 - bias[i])
        vol = np.sqrt(vol * bars_per_year)

        idx = base[i] + regime[i]
        size = size_table[idx]
        wr_mod = 1.0 if win_off[i] else _minimum(wr / win_ref[i], 1.0)
        ref = vol_ref[i]
        vol_mod = ref if vol != vol else (vol if vol > ref else ref)  # np.fmax
        vol_mod = 1.0 if vol_off[i] else ref / vol_mod
        size = size * wr_mod
        size = size * vol_mod
        depth = _minimum(_maximum(drawdown[i] / dd_ref[i], 0.0), 1.0)
        if dd_off[i]:
            depth = 0.0
        size_min, size_max = low[0, i], high[0, i]
        size = size + (size_min - size) * depth

        for k in range(params.shape[0]):
            target = fresh[k, idx]
            if k == 0:
                target = _minimum(_maximum(size, size_min), size_max)
            old = params[k, i]
            p = (target - old) * smoothing[k, i] + old
            p = _minimum(_maximum(p, low[k, i]), high[k, i])
            if disabled[i]:
                p = 1.0
            out_params[k, i] = p
            out_change[k, i] = p - old
            finite = finite and np.isfinite(p)
    if not finite:
        return 3
    for i in range(n):  # -1: no regime seen yet
        if last_regime[i] >= 0 and last_regime[i] != regime[i]:
            transitions[last_regime[i], regime[i]] += 1
    return 0


# ------------------------------------------------------------------------------- stop book
@njit(cache=True)
def _sign(x: float) -> float:
    """``np.sign`` of a float (NaN stays NaN)."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x  # 0.0, -0.0 or NaN


@njit(cache=True)
def stop_levels(
    before: np.ndarray,
    after: np.ndarray,
    price: np.ndarray,
    t: np.ndarray,
    consts: tuple,
    stop_mult: np.ndarray,
    target_mult: np.ndarray,
    stop: np.ndarray,
    target: np.ndarray,
) -> None:
    """`StopBook.on_fill` for every position (see there): ``stop`` / ``target`` [N, A] in
    place. ``consts``: stop_loss, take_profit [N]; has_stop, has_target; pct [N] bool;
    atr_slot [N] (-1: none); atr [S, T, A]. An empty ``*_mult``: no multiplier."""
    stop_loss, take_profit, has_stop, has_target, pct, atr_slot, atr = consts
    n, a = after.shape
    for i in range(n):
        ms = stop_loss[i] * stop_mult[i] if stop_mult.shape[0] else stop_loss[i]
        mt = take_profit[i] * target_mult[i] if target_mult.shape[0] else take_profit[i]
        slot = atr_slot[i]
        for j in range(a):
            x = after[i, j]
            side = _sign(x)
            if side != _sign(before[i, j]):  # opened, flipped or closed
                p = price[i, j]
                if pct[i]:
                    unit = p
                elif slot >= 0:
                    unit = atr[slot, t[i], j]
                else:
                    unit = np.nan
                signed_unit = unit * side
                stop[i, j] = p - signed_unit * ms if has_stop else np.nan
                target[i, j] = signed_unit * mt + p if has_target else np.nan
            if x == 0:  # closed: no levels
                stop[i, j] = np.nan
                target[i, j] = np.nan


@njit(cache=True)
def stop_exits(
    units: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    stop: np.ndarray,
    target: np.ndarray,
    skip_target: np.ndarray,
    counts: tuple,
    exit_: np.ndarray,
    exit_price: np.ndarray,
    kind: np.ndarray,
) -> int:
    """`StopBook.check` for every position (see there): ``exit_``, ``exit_price`` and
    ``kind`` [N, A] out, ``counts`` (stop, target, gap [N]) in place; returns the number of
    exits. Targets of positions where ``skip_target`` (empty: none) are not checked."""
    count_stop, count_target, count_gap = counts
    skip = skip_target.shape[0] > 0
    exits = 0
    for i in range(units.shape[0]):
        for j in range(units.shape[1]):
            u, o, h, lo = units[i, j], open_[i, j], high[i, j], low[i, j]
            s = stop[i, j]
            g = np.nan if skip and skip_target[i, j] else target[i, j]
            # the lower of (open, low) and the higher of (open, high), as np.fmin / np.fmax
            lowest = lo if o != o else (o if lo != lo or o < lo else lo)
            highest = h if o != o else (o if h != h or o > h else h)
            if u > 0:
                hit = lowest <= s or highest >= g
            elif u < 0:
                hit = highest >= s or lowest <= g
            else:
                hit = False
            exit_[i, j] = hit
            exit_price[i, j] = np.nan
            kind[i, j] = 0
            if not hit:
                continue
            exits += 1
            long = u > 0
            stop_gap = o <= s if long else o >= s
            target_gap = o >= g if long else o <= g
            stop_hit = lo <= s if long else h >= s
            target_hit = h >= g if long else lo <= g
            is_target = target_gap or (target_hit and not stop_hit)
            gap = target_gap if is_target else stop_gap
            kind[i, j] = 2 if is_target else 1
            exit_price[i, j] = o if gap else (g if is_target else s)
            if is_target:
                count_target[i] += 1
            else:
                count_stop[i] += 1
            if gap:
                count_gap[i] += 1
    return exits


# -------------------------------------------------------------------------- working orders
IDLE, WORKING, EXPIRED = 0, 1, 2  # `WorkingOrders` states


@njit(cache=True)
def fill_orders(
    weights: np.ndarray,
    units: np.ndarray,
    avg_price: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
    open1: np.ndarray,
    floor: float,
    clipped: np.ndarray,
    book: tuple,
    band: float,
    ttl: int,
    bar: tuple,
    rates: tuple,
    new_units: np.ndarray,
    filled: np.ndarray,
    price: np.ndarray,
    costs: tuple,
    equity_open: np.ndarray,
) -> None:
    """Stage 4 with working orders, for every env: orders to ``weights`` [N, A] worked by
    `WorkingOrders` (its ``book``: target, weight, age, state [N, A], expired, partial [N], in
    place), filled during bar t+1 as `ExecutionModel.fill_inputs` describes (``bar``: limit
    orders?, the limit price (bar t's close), bar t+1's low and high [N, A], or empty; the
    participation cap in units [N, A], or empty), then costed and booked as `fill_at_open`
    does. ``filled`` / ``price`` (out): the fills and their prices.

    An order is sent where none works and the target weight is outside the no-trade ``band``
    around the held weight (or flat with something held), where the target moved more than
    ``band`` from the working order's, or where ``clipped`` (a risk rule acted). A limit
    order fills only if bar t+1 trades through its price (at the open when it opens better);
    the participation cap clips either. A filled order goes idle; a remainder keeps working
    until ``ttl`` bars, then expires."""
    target, weight, age, state, expired, partial = book
    limit, limit_px, low1, high1, most = bar
    has_cap = most.shape[0] > 0
    n, a = weights.shape
    for i in range(n):
        eq = _equity_at_open(i, units, open1, cash, floor)
        equity_open[i] = eq
        for j in range(a):
            p, u, w = open1[i, j], units[i, j], weights[i, j]
            desired = w * (eq / p)
            held = u * p / eq
            if state[i, j] == IDLE:
                new = band <= 0 or abs(w - held) > band or (w == 0 and held != 0)
            else:
                new = abs(w - weight[i, j]) > band
            if new or clipped[i]:  # a flatten after a risk rule is never left to expire
                target[i, j], weight[i, j] = desired, w
                age[i, j], state[i, j] = 0, WORKING
            working = state[i, j] == WORKING
            order = target[i, j] - u if working else 0.0
            px, f = p, order
            if limit:
                lp = limit_px[i, j]
                if order > 0:  # a buy rests at lp: filled if the low reaches it
                    reached, px = low1[i, j] <= lp, _minimum(p, lp)
                else:
                    reached, px = high1[i, j] >= lp, _maximum(p, lp)
                f = order if reached else 0.0
            if has_cap:
                f = _minimum(_maximum(f, -most[i, j]), most[i, j])  # np.clip
            filled[i, j], price[i, j] = f, px
            if working:
                if f == order:
                    state[i, j] = IDLE
                else:  # a remainder: keeps working, or expires with its ttl
                    partial[i] += f != 0
                    age[i, j] += 1
                    if age[i, j] >= ttl:
                        state[i, j] = EXPIRED
                        expired[i] += 1
            new_units[i, j] = u + f
        _costs_row(i, filled, price, rates, costs)
        _rebalance_row(i, units, new_units, price, avg_price, cash, realised, costs[4][i])


# ------------------------------------------------------------------------ stop/target exits
@njit(cache=True)
def _close_row(i, mask, prices, units, avg_price, cash, realised, cost):  # noqa: ANN001, ANN202
    """`Portfolio.close` of env ``i``: sell ``mask``'s positions at ``prices``, pay ``cost``."""
    got = gain = 0.0
    for j in range(units.shape[1]):
        sold = units[i, j] if mask[i, j] else 0.0
        p = prices[i, j]
        got = sold * p if j == 0 else got + sold * p
        g = sold * (p - avg_price[i, j])
        gain = g if j == 0 else gain + g
    cash[i] += got
    cash[i] -= cost
    realised[i] += gain
    realised[i] -= cost
    for j in range(units.shape[1]):
        if mask[i, j]:
            units[i, j] = 0.0
            avg_price[i, j] = 0.0


@njit(cache=True)
def close_positions(
    mask: np.ndarray,
    prices: np.ndarray,
    costs: np.ndarray,
    units: np.ndarray,
    avg_price: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
) -> None:
    """`Portfolio.close` (see there) of every env, the book in place."""
    for i in range(units.shape[0]):
        _close_row(i, mask, prices, units, avg_price, cash, realised, costs[i])


@njit(cache=True)
def close_exits(
    exit_: np.ndarray,
    exit_price: np.ndarray,
    open_: np.ndarray,
    rates: tuple,
    units: np.ndarray,
    avg_price: np.ndarray,
    cash: np.ndarray,
    realised: np.ndarray,
    exit_units: np.ndarray,
    fill_price: np.ndarray,
    costs: tuple,
) -> None:
    """Stops and targets ``exit_`` [N, A] (from `stop_exits`) closed at ``exit_price`` with
    marketable ``rates``' costs: the exits' units and prices (the open where none) into
    ``exit_units`` / ``fill_price``, their costs into ``costs`` (see `fill_costs`), and the
    book (``units``, ``avg_price``, ``cash``, ``realised``) closed in place."""
    for i in range(units.shape[0]):
        for j in range(units.shape[1]):
            hit = exit_[i, j]
            exit_units[i, j] = -units[i, j] if hit else 0.0
            fill_price[i, j] = exit_price[i, j] if hit else open_[i, j]
        _costs_row(i, exit_units, fill_price, rates, costs)
        _close_row(i, exit_, fill_price, units, avg_price, cash, realised, costs[4][i])


# ---------------------------------------------------------------------------------- sizing
@njit(cache=True)
def clip_actions(
    actions: np.ndarray, low: float, high: float, shift: float, out: np.ndarray
) -> bool:
    """``out`` [N, A] = actions clipped to [low, high] (as ``np.clip``), as float64, minus
    ``shift``; False (``out`` incomplete) if an action is NaN or infinite."""
    for i in range(actions.shape[0]):
        for j in range(actions.shape[1]):
            x = actions[i, j]
            if not np.isfinite(x):
                return False
            out[i, j] = np.float64(_minimum(_maximum(x, low), high)) - shift
    return True


@njit(cache=True)
def cap_gross(weights: np.ndarray, max_gross: float) -> None:
    """Scale each row of ``weights`` [N, A] down, in place, so ``sum |w| <= max_gross``."""
    for i in range(weights.shape[0]):
        gross = abs(weights[i, 0])
        for j in range(1, weights.shape[1]):
            gross += abs(weights[i, j])
        if gross > max_gross:
            scale = max_gross / (gross if gross > 1e-300 else 1e-300)
            for j in range(weights.shape[1]):
                weights[i, j] *= scale


# ------------------------------------------------------------------------------ risk limits
@njit(cache=True)
def risk_flatten(
    w: np.ndarray,
    t: np.ndarray,
    equity: np.ndarray,
    drawdown: np.ndarray,
    state: tuple,
    consts: tuple,
    kill_changed: np.ndarray,
    daily_changed: np.ndarray,
) -> tuple:
    """The kill switch and the daily loss halt of `RiskManager.apply` (see there), for every
    env: rows of ``w`` [N, A] flattened in place. ``state`` (in place): killed, halted,
    day_start_equity, current_day [N]. ``consts``: day [T]; has_kill; max_drawdown [N];
    has_daily; daily_keep [N]. ``*_changed`` (out): rows the rule flattened that held a
    weight. Returns how many rows each rule changed."""
    killed, halted, day_start, current_day = state
    day, has_kill, max_drawdown, has_daily, daily_keep = consts
    kills = halts = 0
    for i in range(w.shape[0]):
        if has_kill and drawdown[i] >= max_drawdown[i]:
            killed[i] = True
        kill_changed[i] = False
        if killed[i]:  # sticky until the episode ends
            kill_changed[i] = _flatten_row(w, i)
            kills += kill_changed[i]
        today = day[t[i]]
        if today != current_day[i]:  # a new day re-bases the opening equity, lifts the halt
            day_start[i] = equity[i]
            halted[i] = False
        current_day[i] = today
        if has_daily and equity[i] <= day_start[i] * daily_keep[i]:
            halted[i] = True
        daily_changed[i] = False
        if halted[i]:
            daily_changed[i] = _flatten_row(w, i)
            halts += daily_changed[i]
    return kills, halts


@njit(cache=True)
def _flatten_row(w: np.ndarray, i: int) -> bool:
    """Zero row ``i`` of ``w``; whether it held a non-zero weight."""
    held = False
    for j in range(w.shape[1]):
        held = held or w[i, j] != 0
        w[i, j] = 0.0
    return held


@njit(cache=True)
def risk_within(
    w: np.ndarray, pos_limit: np.ndarray, gross_limit: np.ndarray, cap: np.ndarray,
    consts: tuple, within: np.ndarray,
) -> int:  # fmt: skip
    """Rows of ``w`` [N, A] that tier, max_position, max_concentration, max_net and max_gross
    (and the exposure ``cap`` [N], empty: none) would all leave unchanged, into ``within``
    [N] (a NaN row never is); returns how many are not. ``consts``: has_conc, max
    concentration [N], has_net, max_net [N]."""
    has_conc, max_conc, has_net, max_net = consts
    has_cap = cap.shape[0] > 0
    outside = 0
    for i in range(w.shape[0]):
        big = gross = abs(w[i, 0])
        net = w[i, 0]
        for j in range(1, w.shape[1]):
            m = abs(w[i, j])
            big = _maximum(big, m)
            gross += m
            net += w[i, j]
        limit = _minimum(gross_limit[i], cap[i]) if has_cap else gross_limit[i]
        ok = big <= pos_limit[i] and gross <= limit
        if has_conc and big > max_conc[i] * gross and gross > 0:
            ok = False
        if has_net and not abs(net) <= max_net[i]:
            ok = False
        within[i] = ok
        outside += not ok
    return outside
