// coserve chat in the browser: the page's only script. It speaks the chat
// line protocol over a WebSocket at /chat: each message one line, the same
// commands and replies as with nc or telnet. Everything received is shown as
// text (textContent), never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $('messages'), list = $('members'), input = $('line'), status = $('status');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat';
  const maxShown = 1000;       // messages kept on the page
  const maxDelay = 30000;      // the longest wait between two reconnects, ms

  const state = {
    socket: null, nick: '', room: '', members: new Set(),
    wanted: { nick: '', room: '' },  // restored after a reconnect
    expect: { nick: 0, join: 0, who: 0 },  // replies to what the page sent itself
    quit: false, delay: 1000, retry: null, refresh: null,
  };

  const twoDigits = (n) => String(n).padStart(2, '0');

  function show(text, kind) {
    const item = document.createElement('li');
    if (kind) item.className = kind;
    const now = new Date();
    const time = document.createElement('time');
    time.dateTime = now.toISOString();
    time.textContent = twoDigits(now.getHours()) + ':' + twoDigits(now.getMinutes());
    item.append(time, document.createTextNode(text));
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    log.append(item);
    while (log.childElementCount > maxShown) log.firstElementChild.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  function setStatus(text, down) {
    status.textContent = text;
    status.classList.toggle('down', Boolean(down));
  }

  function showMembers() {
    const names = [...state.members].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    list.replaceChildren(...names.map((name) => {
      const item = document.createElement('li');
      item.textContent = name;
      if (name === state.nick) {
        item.className = 'self';
        item.setAttribute('aria-label', name + ' (you)');
      }
      return item;
    }));
    $('count').textContent = '(' + names.length + ')';
  }

  function setRoom(room) {
    state.room = room;
    $('room').textContent = '#' + room;
    document.title = '#' + room + ' · coserve chat';
  }

  function setNick(nick) {
    state.nick = nick;
    $('me').textContent = 'you are ' + nick;
    showMembers();
  }

  function send(text) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return false;
    state.socket.send(text);
    return true;
  }

  function command(text, what) {
    if (send(text)) state.expect[what] += 1;
  }

  // Joins, leaves and renames change the list at once; a /who a moment
  // later (one for a burst) corrects what a line could not tell for sure.
  function refreshSoon() {
    clearTimeout(state.refresh);
    state.refresh = setTimeout(() => command('/who', 'who'), 1000);
  }

  // What a line from the server means for the room, the name and the list.
  // True when it is a reply the page asked for itself (not shown).
  function understand(text) {
    let m;
    if ((m = /^\* welcome to #(\S+), you are (\S+) \(/.exec(text))) {
      setRoom(m[1]);
      state.members = new Set([m[2]]);
      setNick(m[2]);
      state.delay = 1000;
      if (state.wanted.nick && state.wanted.nick !== m[2]) command('/nick ' + state.wanted.nick, 'nick');
      if (state.wanted.room && state.wanted.room !== m[1]) command('/join ' + state.wanted.room, 'join');
      command('/who', 'who');
      return false;
    }
    if (state.expect.nick && (m = /^\* (?:you are now known as (\S+)|error: (?:nickname|invalid nickname))/.exec(text))) {
      state.expect.nick -= 1;
      if (m[1]) {
        state.members.delete(state.nick);
        state.members.add(m[1]);
        state.wanted.nick = m[1];
        setNick(m[1]);
      } else {
        state.wanted.nick = state.nick;
      }
      return false;
    }
    if (state.expect.join && (m = /^\* (?:you joined #(\S+)|error: (?:invalid room|you are already))/.exec(text))) {
      state.expect.join -= 1;
      if (m[1]) {
        setRoom(m[1]);
        state.wanted.room = m[1];
        state.members = new Set([state.nick]);
        showMembers();
        command('/who', 'who');
      }
      return false;
    }
    if ((m = /^\* \d+ in #(\S+): (.*)$/.exec(text))) {
      const mine = state.expect.who > 0;
      if (mine) state.expect.who -= 1;
      if (m[1] === state.room) {
        state.members = new Set(m[2].split(', ').filter(Boolean));
        showMembers();
      }
      return mine;
    }
    if ((m = /^\* (\S+) joined #(\S+)$/.exec(text)) && m[2] === state.room) {
      state.members.add(m[1]);
      showMembers();
      refreshSoon();
    } else if ((m = /^\* (\S+) left\b/.exec(text)) && state.members.has(m[1])) {
      state.members.delete(m[1]);
      showMembers();
      refreshSoon();
    } else if ((m = /^\* (\S+) is now known as (\S+)$/.exec(text)) && state.members.has(m[1])) {
      state.members.delete(m[1]);
      state.members.add(m[2]);
      showMembers();
      refreshSoon();
    }
    return false;
  }

  function kindOf(text) {
    if (text.startsWith('* error:')) return 'error';
    if (text.startsWith('* ') || text.startsWith('-')) return 'server';
    return '';
  }

  function connect() {
    clearTimeout(state.retry);
    setStatus('connecting…');
    const socket = new WebSocket(url);
    state.socket = socket;
    state.expect = { nick: 0, join: 0, who: 0 };
    socket.addEventListener('open', () => setStatus('connected'));
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      if (!understand(event.data)) show(event.data, kindOf(event.data));
    });
    socket.addEventListener('close', (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      const why = event.reason ? ' (' + event.reason + ')' : '';
      if (state.quit) {
        setStatus('you left' + why + '. Press Enter in the message box to join again.', true);
        return;
      }
      const seconds = Math.round(state.delay / 1000);
      setStatus('connection lost' + why + '; reconnecting in ' + seconds + ' s', true);
      show('* connection lost' + why + '; reconnecting in ' + seconds + ' s', 'error');
      state.retry = setTimeout(connect, state.delay);
      state.delay = Math.min(maxDelay, state.delay * 2) * (0.75 + Math.random() / 2);
    });
  }

  $('say').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!state.socket) {
      if (state.quit) {
        state.quit = false;
        state.delay = 1000;
        connect();
      }
      return;
    }
    if (text.trim() === '') return;
    if (!send(text)) {
      setStatus('not connected yet: your line is kept; press Enter again once connected', true);
      return;
    }
    input.value = '';
    const [word, ...rest] = text.split(' ');
    const arg = rest.join(' ').trim();
    if (text.startsWith('//')) show('<' + state.nick + '> ' + text.slice(1));
    else if (!text.startsWith('/')) show('<' + state.nick + '> ' + text);
    else if (word === '/me' && arg) show('* ' + state.nick + ' ' + rest.join(' '));
    else if (word === '/nick' && arg) state.expect.nick += 1;
    else if (word === '/join' && arg) state.expect.join += 1;
    else if (word === '/quit') state.quit = true;
  });

  connect();
  input.focus();
})();
