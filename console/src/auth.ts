// The admin token lives in sessionStorage: entered once per browser session,
// gone when the tab closes, never put in a URL.
const KEY = 'engage.adminToken';

export const readToken = (): string | null => sessionStorage.getItem(KEY);
export const saveToken = (token: string) => sessionStorage.setItem(KEY, token);
export const clearToken = () => sessionStorage.removeItem(KEY);
