// Runs `task` now and then every `ms` while its page is shown; a hidden tab skips the turn. A turn starts
// only after the previous one finished, so a slow API never piles requests up. Stopped by the returned
// function, which the router calls when the page goes away.

export function every(ms, task) {
  let timer = null;
  let stopped = false;
  const turn = async () => {
    if (stopped) return;
    try {
      if (!document.hidden) await task();
    } catch (error) {
      console.warn("refresh failed", error);
    } finally {
      if (!stopped) timer = setTimeout(turn, ms);
    }
  };
  turn();
  return {
    now: () => {
      clearTimeout(timer);
      turn();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
